import Engine
@testable import Models
import XCTest

/// The architecture JSON a network file carries rebuilds the bundled model's layout exactly.
final class NetworkDescriptionTests: XCTestCase {
    func testDescriptionRebuildsTheSameNetwork() throws {
        let net = try Network.fashion(seed: 4)
        let text = try NetworkDescription(net).json()
        let copy = try NetworkDescription.parse(text).build(seed: 99)
        for name in net.parameterNames { try copy.setParameter(name, try net.parameter(name)) }
        let x = Tensor.randn([2, 1, 28, 28], seed: 1)
        XCTAssertEqual(try net(x), try copy(x))
        XCTAssertEqual(copy.spec, net.spec)
        XCTAssertEqual(copy.layerNames, net.layerNames)
        XCTAssertThrowsError(try NetworkDescription.parse("{\"nodes\": 3}"))
        XCTAssertThrowsError(try NetworkDescription.parse(text.replacingOccurrences(of: "\"conv2d\"", with: "\"conv9d\"")).build()) { e in
            XCTAssertTrue("\(e)".contains("conv2d"), "\(e)")  // did-you-mean names the real kind
        }
    }
}
