import Foundation
import Script
import XCTest

/// The lecture's visualizations as a user reaches them, from a script: labelled grids,
/// attribution maps with their default class and clip, top patches from photo folders,
/// projections shown beside their patches, and inversions that report how well they did.
final class VisualizationScriptTests: XCTestCase {
    func testGridsLabelTilesWithWhatTheNetworkSeesOrWhatTheResultsAre() {
        XCTAssertEqual(text("g = grid([sample(\"sneaker\"), sample(\"bag\")])\ng.shape"), "[1, 32, 62]")
        // With net=, a band of text under each tile: the class and its probability.
        XCTAssertEqual(text("g = grid([sample(\"sneaker\"), sample(\"bag\")], net=load(\"fashion\"))\ng.shape[1] > 32"), "true")
        // Results label themselves: a projection says its layer and channel.
        XCTAssertEqual(text("net = load(\"fashion\")\nd = deconv(net, sample(\"bag\"), layer=\"conv2\", channel=1)\nd.label"), "\"conv2 ch 1\"")
        XCTAssertTrue(errorMessage("grid([zeros(1, 2, 2)], labels=[\"a\", \"b\"])").contains("2 labels for 1 pictures"))
        XCTAssertTrue(errorMessage("grid([zeros(1, 2, 2)], columns=0)").contains("columns must be at least 1"))
    }

    func testSaliencyDefaultsToTheTopClassAndAPercentileClip() {
        let setup = "net = load(\"fashion\")\nimg = sample(\"sneaker\")\n"
        XCTAssertEqual(text(setup + "allclose(saliency(net, img), saliency(net, img, class=\"sneaker\"))"), "true")
        // Clipped at the 99th percentile: values in [0, 1], about 1 % of the pixels at 1.
        XCTAssertEqual(text(setup + "s = saliency(net, img)\n[min(s) >= 0, max(s)]"), "[true, 1]")
        XCTAssertEqual(text(setup + "s = saliency(net, img)\nn = sum(s > 0.999)\nn >= 1 and n <= 20"), "true")
        // clip=none is the raw |dS/dI|; clip=100 the raw map over its maximum.
        XCTAssertEqual(text(setup + "raw = saliency(net, img, clip=none)\n[max(raw) != 1, allclose(saliency(net, img, clip=100), raw / max(raw))]"), "[true, true]")
        XCTAssertEqual(text(setup + "s = saliency(net, img, clip=100)\nsum(s > 0.999)"), "1")
        XCTAssertTrue(errorMessage(setup + "saliency(net, img, clip=0)").contains("percentile"))
        // The same kind of call for SmoothGrad and Grad-CAM, each ready to overlay.
        XCTAssertEqual(text(setup + "m = smoothgrad(net, img, samples=4)\n[m.shape, max(m)]"), "[[1, 28, 28], 1]")
        XCTAssertEqual(text(setup + "m = gradcam(net, img)\n[m.shape, max(m)]"), "[[1, 28, 28], 1]")
        XCTAssertEqual(text(setup + "overlay(img, gradcam(net, img)).shape"), "[3, 28, 28]")
    }

    func testTopPatchesReadAFolderOfPhotosAndProjectByEitherRule() throws {
        let folder = try TestFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        // Photos of other sizes and colour: fitted to the network (gray, 28 x 28) as they are read.
        let save = ["sneaker", "bag", "trouser", "sandal"].enumerated().map { i, name in
            "s = resize(sample(\"\(name)\"), 40 + \(i) * 8)\nsave(concat([s, s, s]), \"\(folder.path)/\(i)-\(name).png\")"
        }.joined(separator: "\n")
        XCTAssertEqual(text(save + "\n1"), "1")
        let run = "net = load(\"fashion\")\nt = top_patches(net, \"conv2\", 3, \"\(folder.path)\", k=3)\n"
        XCTAssertEqual(text(run + "[len(t.patches), len(t.files), t.image.shape[0]]"), "[3, 3, 1]")
        XCTAssertEqual(text(run + "t.activations[0] >= t.activations[1] and t.activations[1] >= t.activations[2]"), "true")
        XCTAssertEqual(text(run + "g = top_patches(net, \"conv2\", 3, \"\(folder.path)\", k=3, method=\"guided\")\ng.files == t.files"), "true")
        // A list of photos of any size works the same way.
        XCTAssertEqual(text("net = load(\"fashion\")\nlen(top_patches(net, \"conv2\", 3, [resize(sample(\"bag\"), 50), sample(\"coat\")], k=2).patches)"), "2")
        XCTAssertTrue(errorMessage(run + "top_patches(net, \"conv2\", 3, \"\(folder.path)\", method=\"backprop\")").contains("\"deconvnet\""))
        XCTAssertTrue(errorMessage("top_patches(load(\"fashion\"), \"conv2\", 3, \"/no/such/folder\")").contains("not a folder"))
        XCTAssertTrue(errorMessage(run + "top_patches(net, \"conv2\", 99, \"\(folder.path)\")").contains("channels"))
    }

    func testProjectionsShowBesideTheirPatch() {
        let setup = "net = load(\"fashion\")\nd = deconv(net, sample(\"pullover\"), layer=\"conv2\", channel=5)\n"
        // The figure is two tiles side by side, both larger than the patch; the whole projection is kept too.
        XCTAssertEqual(text(setup + "[d.full.shape, d.image.shape[2] > 2 * d.patch.shape[2]]"), "[[1, 28, 28], true]")
        XCTAssertEqual(text(setup + "g = guided(net, sample(\"pullover\"), layer=\"conv2\", channel=5)\ng.patch.shape == d.patch.shape"), "true")
    }

    func testInversionReportsItsErrorAndCorrelation() {
        let setup = "net = load(\"fashion\")\nimg = sample(\"bag\")\n"
        XCTAssertEqual(text(setup + "r = invert(net, img, layer=\"conv1\", steps=100)\n[r.error < 0.05, r.correlation > 0.95, r.label]"), "[true, true, \"conv1\"]")
        XCTAssertEqual(text(setup + "a = invert(net, img, layer=\"fc2\", steps=100, seed=1)\nb = invert(net, img, layer=\"fc2\", steps=100, seed=2)\n[predict(net, a).label, predict(net, b).label, allclose(a.image, b.image)]"),
                       "[\"Bag\", \"Bag\", false]")
        XCTAssertTrue(errorMessage(setup + "invert(net, img, layer=\"conv1\", lr=0)").contains("learning rate"))
        XCTAssertTrue(errorMessage(setup + "invert(net, img, layer=\"conv7\")").contains("conv"))
        XCTAssertTrue(errorMessage(setup + "invert(net, img, layer=\"conv1\", momentum=0.9)").contains("momentum"))
    }
}
