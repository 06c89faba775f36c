// Pooling kinds: windows (max, average) and averages to a size (adaptive, global).

extension LayerKind {
    static let poolAttributes: [AttributeSpec] = [
        .kernel,
        AttributeSpec("stride", .pair, .sameAs("kernel"), "steps between windows: s or [sh, sw] (default: the kernel, windows side by side)"),
        .padding,
        .optional("ceil_mode", .flag, .bool(false), "whether a last, partial window is kept"),
        .optional("count_include_pad", .flag, .bool(true), "whether an average counts the padding"),
    ]

    public static let maxpool = LayerKind("maxpool", summary: "the largest value of each window; the switches it records let deconvnets unpool",
                                          attributes: poolAttributes, layout: .images, geometry: .window) { a, _ in try PoolLayer(attributes: a) }
    public static let avgpool = LayerKind("avgpool", summary: "the mean of each window",
                                          attributes: poolAttributes, layout: .images, geometry: .window) { a, _ in try PoolLayer(attributes: a) }
    public static let globalAvgpool = unary("global_avgpool", summary: "each channel averaged to one number: [N, C, H, W] to [N, C, 1, 1]",
                                            layout: .images, geometry: .global) { x, _, _ in
        try globalAvgPool2d(x)
    }
    public static let adaptiveAvgpool = unary("adaptive_avgpool", summary: "averages over windows that divide the grid into size (PyTorch's AdaptiveAvgPool2d)",
                                              attributes: [.required("size", .pair, "the output grid: s or [oh, ow]")],
                                              layout: .images, geometry: .adaptive) { x, a, _ in
        let s = try a.ints("size", count: 2)
        return try adaptiveAvgPool2d(x, outputSize: (s[0], s[1]))
    }
}

/// A maxpool or avgpool layer, its window checked when it is made.
public final class PoolLayer: Layer {
    public let options: PoolOptions
    init(attributes a: Attributes) throws {
        let k = try a.ints("kernel", count: 2)
        let s = try a.ints("stride", count: 2)
        let p = try a.ints("padding", count: 4)
        try checkExtents(a.kind, "kernel", k, 1...largestLayerExtent)
        try checkExtents(a.kind, "stride", s, 1...largestLayerExtent)
        try checkExtents(a.kind, "padding", p, 0...largestLayerExtent)
        options = PoolOptions(kernel: (k[0], k[1]), stride: (s[0], s[1]), padding: (p[0], p[1], p[2], p[3]),
                              ceilMode: try a.bool("ceil_mode"), countIncludePad: try a.bool("count_include_pad"))
        super.init(a)
    }

    public override func forward(_ inputs: [Variable], name: String, context: ForwardContext) throws -> Variable {
        let x = try single(inputs)
        if kind == "avgpool" { return try avgPool2d(x, options) }
        return try maxPool2d(x, options)
    }

    public override func outputShape(_ inputs: [[Int]]) throws -> [Int] {
        guard let s = inputs.first else { throw EngineError.invalidArgument("\(kind) takes one input") }
        let r = try options.validate(s)
        return [r.n, r.c, r.oh, r.ow]
    }

    public override func multiplyAdds(_ inputs: [[Int]], output: [Int]) -> Int { 0 }
}
