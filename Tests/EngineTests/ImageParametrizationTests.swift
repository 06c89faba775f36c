import XCTest
@testable import Engine

/// The ops that make and transform an optimized image: backward passes against finite
/// differences, and the properties the render pipeline relies on.
final class ImageParametrizationTests: XCTestCase {
    func check(_ name: String, _ inputs: [Tensor], file: StaticString = #filePath, line: UInt = #line,
               _ f: @escaping ([Variable]) throws -> Variable) {
        do {
            for r in try checkGradients(at: inputs, of: f, tolerance: 1e-2) {
                XCTAssertTrue(r.passed, "\(name): gradient off by \(r.maxAbsoluteError) at \(r.worstIndex) (analytic \(r.analytic), numeric \(r.numeric))",
                              file: file, line: line)
            }
        } catch { XCTFail("\(name): \(error)", file: file, line: line) }
    }

    func testFourierImageBackwardMatchesFiniteDifferences() {
        for (h, w) in [(6, 6), (5, 7), (4, 5)] {
            let spectrum = Tensor.randn([1, 2, h, 2, w / 2 + 1], seed: UInt64(h * w))
            check("fourier \(h)x\(w)", [spectrum]) { try fourierImage($0[0], height: h, width: w, decayPower: 1) }
            check("fourier \(h)x\(w) flat", [spectrum]) { try fourierImage($0[0], height: h, width: w, decayPower: 0) }
        }
    }

    /// With no decay the op is the orthonormal inverse real DFT over 4: the DC coefficient is a
    /// flat image of value X/(4√HW), and one cosine coefficient gives 2·cos(2π(km/H + ln/W))·X/(4√HW).
    func testFourierImageIsTheInverseRealDFT() throws {
        let (h, w) = (6, 8), l = w / 2 + 1
        var s = Tensor(zeros: [1, 1, h, 2, l])
        s.scalars[0] = 3  // DC, real part
        let flat = try fourierImage(Variable(s), height: h, width: w, decayPower: 0).value
        for v in flat.scalars { XCTAssertEqual(v, 3 / (4 * Float(h * w).squareRoot()), accuracy: 1e-6) }

        var one = Tensor(zeros: [1, 1, h, 2, l])
        one.scalars[(1 * 2 + 0) * l + 2] = 1  // k = 1, l = 2, real part
        one.scalars[(1 * 2 + 1) * l + 2] = 0.5  // and an imaginary part
        let wave = try fourierImage(Variable(one), height: h, width: w, decayPower: 0).value
        for m in 0..<h { for n in 0..<w {
            let angle = 2 * Double.pi * (Double(m) / Double(h) + 2 * Double(n) / Double(w))
            let expected = 2 * (cos(angle) - 0.5 * sin(angle)) / (4 * Double(h * w).squareRoot())
            XCTAssertEqual(Double(wave.scalars[m * w + n]), expected, accuracy: 1e-5)
        }}
    }

    /// Higher frequencies are scaled down by 1/f: the same coefficient makes a weaker wave.
    func testFourierImageScalesByInverseFrequency() throws {
        let (h, w) = (16, 16), l = w / 2 + 1
        func energy(_ k: Int) throws -> Float {
            var s = Tensor(zeros: [1, 1, h, 2, l])
            s.scalars[k] = 1  // row 0, real part, column k
            return try fourierImage(Variable(s), height: h, width: w).value.scalars.reduce(0) { $0 + $1 * $1 }
        }
        XCTAssertEqual(try energy(2) / (try energy(4)), 4, accuracy: 1e-3)  // amplitude ∝ 1/f, energy ∝ 1/f²
    }

    func testMixChannelsAndClampBackward() {
        check("mix", [Tensor.randn([2, 3, 3, 4], seed: 1)]) { try mixChannels($0[0], colorCorrelationSqrt) }
        // Inside the range the clamp is the identity; away from the bounds its gradient is exact.
        let inside = Tensor.randn([1, 3, 4, 4], seed: 2).map { 0.5 + 0.1 * $0 }
        check("clamp", [inside]) { clampPassingInward($0[0]) }
    }

    /// Outside the range the clamp passes the gradient that points back in, and only that one.
    func testClampPassesOnlyTheGradientThatPointsInward() throws {
        let x = Variable(Tensor(shape: [4], scalars: [-1, -1, 2, 2]), requiresGrad: true)
        let g = try gradients(of: clampPassingInward(x), withRespectTo: [x], seed: Tensor(shape: [4], scalars: [1, -1, 1, -1]))[0]
        XCTAssertEqual(g.scalars, [1, 0, 0, -1])
    }

    func testResampleBackwardMatchesFiniteDifferences() {
        let x = Tensor.randn([1, 2, 7, 6], seed: 3)
        let maps: [(String, Int, Int, AffineMap)] = [
            ("rotate 7°", 7, 6, .rotation(degrees: 7, height: 7, width: 6)),
            ("scale up", 9, 8, .resize(height: 7, width: 6, toHeight: 9, width: 8)),
            ("scale down", 5, 4, .resize(height: 7, width: 6, toHeight: 5, width: 4)),
            ("shift 1.3, -0.6", 7, 6, .translation(dx: 1.3, dy: -0.6)),
        ]
        for (name, oh, ow, m) in maps {
            // Finite differences do not see the kinks of bilinear interpolation, only its pieces;
            // the sample points are fixed by the map, so the op is linear in x and exact here.
            check("resample \(name)", [x]) { try resample($0[0], height: oh, width: ow, map: m, fill: 0.5) }
        }
    }

    func testResampleMovesThePicture() throws {
        var x = Tensor(zeros: [1, 1, 5, 5])
        x.scalars[2 * 5 + 1] = 1  // row 2, column 1
        let shifted = try resample(Variable(x), height: 5, width: 5, map: .translation(dx: 2, dy: 1)).value
        XCTAssertEqual(shifted.scalars[3 * 5 + 3], 1, accuracy: 1e-6)
        XCTAssertEqual(shifted.scalars.reduce(0, +), 1, accuracy: 1e-6)
        // A quarter turn about the centre takes row 2, column 1 to row 3, column 2 (counterclockwise on screen).
        let turned = try resample(Variable(x), height: 5, width: 5, map: .rotation(degrees: 90, height: 5, width: 5)).value
        XCTAssertEqual(turned.scalars[3 * 5 + 2], 1, accuracy: 1e-5)
        // Resizing with aligned corners keeps the corners.
        let big = try resample(Variable(Tensor.randn([1, 1, 4, 4], seed: 5)), height: 7, width: 7,
                               map: .resize(height: 4, width: 4, toHeight: 7, width: 7)).value
        let small = Tensor.randn([1, 1, 4, 4], seed: 5)
        XCTAssertEqual(big.scalars[0], small.scalars[0], accuracy: 1e-6)
        XCTAssertEqual(big.scalars[48], small.scalars[15], accuracy: 1e-6)
        XCTAssertThrowsError(try resample(Variable(x), height: 0, width: 5, map: .translation(dx: 0, dy: 0)))
    }

    /// Redirected ReLU: an image whose units are all off still gets a gradient towards turning
    /// them on; once some unit passes the true gradient, the true gradient is all there is.
    func testRedirectedReLUPassesGradientOnlyWhileTheTrueOneIsZero() throws {
        let dead = Variable(Tensor(shape: [1, 4], scalars: [-1, -2, -3, -4]), requiresGrad: true)
        let seed = Tensor(shape: [1, 4], scalars: [1, -1, 2, 0.5])
        let plain = try gradients(of: relu(dead), withRespectTo: [dead], seed: seed)[0]
        XCTAssertEqual(plain.scalars, [0, 0, 0, 0])
        let redirected = try gradients(of: relu(dead, rule: .redirected), withRespectTo: [dead], seed: seed)[0]
        XCTAssertEqual(redirected.scalars, [1, 0, 2, 0.5])  // the push downwards (-1) stays blocked
        let alive = Variable(Tensor(shape: [1, 4], scalars: [1, -2, -3, -4]), requiresGrad: true)
        let g = try gradients(of: relu(alive, rule: .redirected), withRespectTo: [alive], seed: seed)[0]
        XCTAssertEqual(g.scalars, [1, 0, 0, 0])
        // ReLU6 redirects at both bounds.
        let clipped = Variable(Tensor(shape: [1, 2], scalars: [-1, 7]), requiresGrad: true)
        let g6 = try gradients(of: clip(clipped, min: 0, max: 6, rule: .redirected), withRespectTo: [clipped],
                               seed: Tensor(shape: [1, 2], scalars: [1, -1]))[0]
        XCTAssertEqual(g6.scalars, [1, -1])
        let g6up = try gradients(of: clip(clipped, min: 0, max: 6, rule: .redirected), withRespectTo: [clipped],
                                 seed: Tensor(shape: [1, 2], scalars: [-1, 1]))[0]
        XCTAssertEqual(g6up.scalars, [0, 0])
    }

    func testScalarWithGivenGradientsSeedsEachInput() throws {
        let a = Variable(Tensor.randn([3], seed: 1), requiresGrad: true)
        let b = Variable(Tensor.randn([2], seed: 2), requiresGrad: true)
        let sa = try sum(try multiply(a, a)), sb = try sum(b)
        let s = try Variable.scalar(sa.value.scalars[0] + sb.value.scalars[0], of: [sa, sb],
                                    gradients: [Tensor(repeating: 1, shape: sa.shape), Tensor(repeating: 2, shape: sb.shape)])
        let (ga, gb) = try { let g = try gradients(of: s, withRespectTo: [a, b]); return (g[0], g[1]) }()
        for i in 0..<3 { XCTAssertEqual(ga.scalars[i], 2 * a.value.scalars[i], accuracy: 1e-6) }
        XCTAssertEqual(gb.scalars, [2, 2])
    }
}
