// The gradient check of the lecture's backpropagation section as a table a person reads.
import Engine
import Foundation

/// The results of `checkGradients` as an aligned text table: per argument (named by `names`,
/// default x0, x1, ...) its size, the largest absolute and relative differences between the
/// analytic gradient and central finite differences, the two values where they differ most,
/// and whether the check passed.
public func gradcheckTable(_ results: [GradientCheckResult], names: [String]? = nil) -> String {
    let header = ["argument", "size", "max abs error", "max rel error", "analytic", "numeric", "ok"]
    let rows = results.map { r -> [String] in
        let name = names.flatMap { r.input < $0.count ? $0[r.input] : nil } ?? "x\(r.input)"
        return [name, String(r.count), scientific(r.maxAbsoluteError), scientific(r.maxRelativeError),
                formatNumber(r.analytic), formatNumber(r.numeric), r.passed ? "yes" : "NO"]
    }
    let widths = header.indices.map { c in ([header] + rows).map { $0[c].count }.max() ?? 0 }
    func line(_ cells: [String]) -> String {
        let text = cells.enumerated().map { c, cell in
            let pad = String(repeating: " ", count: widths[c] - cell.count)
            return c == 0 || c == header.count - 1 ? cell + pad : pad + cell
        }.joined(separator: "  ")
        return String(text.reversed().drop(while: { $0 == " " }).reversed())
    }
    return ([line(header)] + rows.map(line)).joined(separator: "\n")
}

/// 0.000123 as "1.23e-04", zero as "0".
func scientific(_ v: Float) -> String {
    if v == 0 { return "0" }
    if !v.isFinite { return formatNumber(v) }
    let exponent = Int(floor(log10(Double(abs(v)))))
    let mantissa = Double(v) / pow(10, Double(exponent))
    let rounded = (mantissa * 100).rounded() / 100
    let (m, e) = abs(rounded) >= 10 ? (rounded / 10, exponent + 1) : (rounded, exponent)
    return "\(String(format: "%.2f", m))e\(e < 0 ? "-" : "+")\(abs(e) < 10 ? "0" : "")\(abs(e))"
}
