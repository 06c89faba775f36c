import Engine
@testable import Script
import XCTest

/// Objectives, transforms and render as a user writes them, on the bundled network.
final class RenderScriptTests: XCTestCase {
    func testObjectivesAreValuesThatAddAndScale() {
        XCTAssertEqual(text("channel(\"conv2\", 3) - 0.1 * diversity(\"conv1\")"),
                       "objective: channel(\"conv2\", 3) - 0.1 * diversity(\"conv1\")")
        XCTAssertEqual(text("o = logit(\"bag\")\n2 * o + neuron(\"conv2\", 1, y=3) / 2"),
                       "objective: 2 * logit(\"bag\") + 0.5 * neuron(\"conv2\", 1, y=3)")
        XCTAssertEqual(text("-deepdream(\"conv1\")"), "objective: -deepdream(\"conv1\")")
        XCTAssertEqual(text("jitter(4)"), "transform: jitter(4)")
        XCTAssertTrue(errorMessage("channel(\"conv2\", 1) * channel(\"conv2\", 2)").contains("scale by numbers"))
        XCTAssertTrue(errorMessage("logit(\"bag\") + 1").contains("objectives add and subtract"))
    }

    func testRenderRunsFromAScriptAndItsShortForms() {
        let code = """
        net = load("fashion")
        r = render(net, channel("conv2", 5) - 0.5 * diversity("conv2"), steps=12, batch=2, transforms=[margin(2), jitter(2)])
        v = classviz(net, class="bag", steps=12)
        p = classviz(net, class="bag", steps=12, priors=false)
        q = classviz(net, class="bag", steps=12, l2=0.01)
        m = maximize(net, "conv2", 5, steps=12, unit=[3, 3])
        d = dream(net, sample("bag"), "conv2", steps=5)
        [len(r.images), r.steps, r.history[-1] > r.history[0], type(v), v.steps, len(p.history), len(q.history), m.steps, d.steps, r.image.shape]
        """
        XCTAssertEqual(text(code), "[2, 12, true, \"classviz\", 12, 12, 12, 12, 5, [1, 28, 28]]")
    }

    /// A list of classes gives the class models the separate calls give, rendered side by side.
    func testClassvizOfAListIsEachClassAsItsOwnCallMakesIt() {
        let code = """
        net = load("fashion")
        ms = classviz(net, class=["bag", 7, "trouser"], steps=10)
        one = classviz(net, class=7, steps=10)
        [len(ms), type(ms[1]), ms[2].steps, max(abs(ms[1].image - one.image)) < 1e-5, max(abs(ms[0].image - one.image)) > 0.01]
        """
        XCTAssertEqual(text(code), "[3, \"classviz\", 10, true, true]")
        let net = "net = load(\"fashion\")\n"
        XCTAssertTrue(errorMessage(net + "classviz(net, class=[])").contains("empty"))
        XCTAssertTrue(errorMessage(net + "classviz(net, class=[\"bag\", \"sneakr\"])").contains("Sneaker"))
        XCTAssertTrue(errorMessage(net + "classviz(net, class=[\"bag\", 12])").contains("out of range"))
        XCTAssertTrue(errorMessage(net + "classviz(net, class=[\"bag\"], priors=false)").contains("once per class"))
    }

    func testBadObjectivesParametrizationsAndTransformsAreRefusedBeforeTheFirstStep() {
        let net = "net = load(\"fashion\")\n"
        XCTAssertTrue(errorMessage(net + "render(net, channel(\"conv9\", 3))").contains("did you mean 'conv1'"))
        XCTAssertTrue(errorMessage(net + "render(net, channel(\"conv2\", 40))").contains("32 channels, 0 to 31"))
        XCTAssertTrue(errorMessage(net + "render(net, logit(\"sneakr\"))").contains("Sneaker"))
        XCTAssertTrue(errorMessage(net + "render(net, 3)").contains("expected an objective"))
        XCTAssertTrue(errorMessage(net + "render(net, logit(1), param=\"wavelet\")").contains("\"pixels\" or \"fourier\""))
        XCTAssertTrue(errorMessage(net + "render(net, logit(1), range=\"tanh\")").contains("\"sigmoid\" or \"clamp\""))
        XCTAssertTrue(errorMessage(net + "render(net, logit(1), decorrelate=true)").contains("colour network"))
        XCTAssertTrue(errorMessage(net + "render(net, logit(1), decay=-1)").contains("decay must be"))
        XCTAssertTrue(errorMessage(net + "render(net, logit(1), transforms=[3])").contains("transforms are made by"))
        XCTAssertTrue(errorMessage(net + "render(net, logit(1), transforms=\"all\")").contains("\"standard\""))
        XCTAssertTrue(errorMessage(net + "render(net, diversity(\"conv2\"))").contains("batch"))
        XCTAssertTrue(errorMessage(net + "render(net, logit(1), batch=0)").contains("batch must be"))
        XCTAssertTrue(errorMessage("jitter(0)").contains("jitter takes 1 to 512"))
        XCTAssertTrue(errorMessage("random_rotate([])").contains("non-empty list"))
        XCTAssertTrue(errorMessage(net + "render(net, neuron(\"conv2\", 1, x=99))").contains("outside layer 'conv2'"))
    }
}
