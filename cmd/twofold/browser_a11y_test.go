package main

import (
	"context"
	_ "embed"
	"fmt"
	"strings"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// What the browser suite checks on every page besides its content: that
// axe-core finds no serious or critical accessibility violation, and, on
// the pages a journey looks at more closely, that they work on a phone,
// in the dark theme, and without layout shift when an error appears.

// axeSource is axe-core (testdata/README.md says where it comes from),
// injected into each page the suite checks.
//
//go:embed testdata/axe.min.js
var axeSource string

// axeViolation is one rule axe-core found broken, with up to five of the
// elements that break it.
type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// axeRun runs every rule axe-core enables by default (WCAG 2.x A and AA,
// and best practices) on the whole document.
const axeRun = `axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations.map(v => ({
  id: v.id, impact: v.impact || "", help: v.help,
  nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + ": " + (n.failureSummary || "").replace(/\s+/g, " ")),
})))`

// axe checks the page with axe-core: a serious or critical violation
// fails the test; lesser ones are logged.
func (c *chromeTab) axe(what string) {
	c.t.Helper()
	if !chromeRun(c, what+": is axe-core loaded", chromedp.Evaluate[bool](`typeof window.axe === "object"`)) {
		// Evaluated through DevTools, so the page's CSP, which allows no
		// inline script, does not apply.
		c.do(what+": load axe-core", chromedp.Evaluate[chromedp.Void](axeSource))
	}
	found := chromeRun(c, what+": axe-core", chromedp.Evaluate[[]axeViolation](axeRun, chromedp.EvalAwaitPromise))
	var serious []string
	for _, v := range found {
		line := fmt.Sprintf("%s (%s): %s\n    %s", v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "\n    "))
		if v.Impact == "serious" || v.Impact == "critical" {
			serious = append(serious, line)
		} else {
			c.t.Logf("%s: axe-core: %s", what, line)
		}
	}
	if len(serious) > 0 {
		c.fail("%s: axe-core found serious accessibility violations:\n  %s", what, strings.Join(serious, "\n  "))
	}
}

// unlabelledFields finds the form fields a person fills in that have no
// label or no autocomplete attribute (which tells password managers and
// browsers what goes in them).
const unlabelledFields = `[...document.querySelectorAll("input, select, textarea")]
  .filter(f => !["hidden", "submit", "button", "checkbox", "radio"].includes(f.type))
  .filter(f => f.labels.length === 0 || !f.getAttribute("autocomplete"))
  .map(f => "<" + f.localName + " name=" + f.name + "> labels " + f.labels.length + ", autocomplete " + JSON.stringify(f.getAttribute("autocomplete")))`

// checkFields fails when a field lacks a label or an autocomplete attribute.
func (c *chromeTab) checkFields(what string) {
	c.t.Helper()
	if bad := chromeRun(c, what+": look at the fields", chromedp.Evaluate[[]string](unlabelledFields)); len(bad) > 0 {
		c.fail("%s: fields without a label or autocomplete:\n  %s", what, strings.Join(bad, "\n  "))
	}
}

// cdpCall is a DevTools command as a step.
func cdpCall[P, R any](cmd cdp.Command[P, R], params P) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, cmd, params)
		return err
	})
}

// phoneWidth is the narrowest screen the pages are made for, in CSS pixels.
const phoneWidth = 360

// onPhone shows the page on a phone 360 px wide: nothing may be wider
// than the screen, and axe-core checks it again (target sizes, reflow).
// It saves the screenshot as name-phone, then returns to the desktop.
func (c *chromeTab) onPhone(name string) {
	c.t.Helper()
	c.do(name+": a phone", chromedp.EmulateViewport(phoneWidth, 760, chromedp.EmulateMobile, chromedp.EmulatePortrait))
	wide := chromeRun(c, name+": measure on a phone", chromedp.Evaluate[[]string](`(() => {
  const out = [], w = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth > w) out.push("the page scrolls sideways: " + document.documentElement.scrollWidth + " px wide");
  for (const el of document.querySelectorAll("body *")) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && (r.right > w + 0.5 || r.left < -0.5) && !el.closest(".table-scroll, .skip")) out.push("<" + el.localName + (el.className ? " class=" + el.className : "") + "> reaches " + Math.round(r.left) + ".." + Math.round(r.right));
  }
  return out.slice(0, 10);
})()`))
	if len(wide) > 0 {
		c.fail("%s: not readable %d px wide:\n  %s", name, phoneWidth, strings.Join(wide, "\n  "))
	}
	c.axe(name + " on a phone")
	c.screenshot(name + "-phone")
	c.do(name+": back to the desktop", cdpCall(emulation.ClearDeviceMetricsOverride, cdp.Empty{}))
}

// inDark shows the page as a system in dark mode asks for it: axe-core
// checks it again (contrast above all), and the screenshot is name-dark.
func (c *chromeTab) inDark(name string) {
	c.t.Helper()
	scheme := func(v string) chromedp.Action[chromedp.Void] {
		return cdpCall(emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: v}}})
	}
	background := chromedp.Evaluate[string](`getComputedStyle(document.body).backgroundColor`)
	light := chromeRun(c, name+": background", background)
	c.do(name+": dark theme", scheme("dark"))
	if dark := chromeRun(c, name+": dark background", background); dark == light {
		c.fail("%s: the page has no dark theme (background %s in both)", name, dark)
	}
	c.axe(name + " in the dark theme")
	c.screenshot(name + "-dark")
	c.do(name+": light theme", scheme("light"))
}

// box is where an element is on the page, in CSS pixels.
type box struct{ Top, Left, Width, Height float64 }

// position returns where the element sel is on the page.
func (c *chromeTab) position(sel string) box {
	c.t.Helper()
	return chromeRun(c, "measure "+sel, chromedp.Evaluate[box](fmt.Sprintf(`(() => {
  const r = document.querySelector(%q).getBoundingClientRect();
  return {top: r.top + scrollY, left: r.left + scrollX, width: r.width, height: r.height};
})()`, sel)))
}

// expectNoShift fails when the element sel moved from before: an error
// that appears must not push the page around.
func (c *chromeTab) expectNoShift(what, sel string, before box) {
	c.t.Helper()
	if after := c.position(sel); after != before {
		c.fail("%s: %s moved from %+v to %+v", what, sel, before, after)
	}
}

// expectFieldError checks the error the page shows for field id: the
// message is errID's text, which is announced (aria-live) and tied to the
// field (aria-describedby), and the field is marked invalid.
func (c *chromeTab) expectFieldError(what, id, errID, want string) {
	c.t.Helper()
	got := chromeRun(c, what+": the error", chromedp.Evaluate[map[string]string](fmt.Sprintf(`(() => {
  const f = document.getElementById(%q), e = document.getElementById(%q);
  return {text: e ? e.textContent.trim() : "", live: e ? (e.getAttribute("aria-live") || e.getAttribute("role") || "") : "",
    describedby: f.getAttribute("aria-describedby") || "", invalid: f.getAttribute("aria-invalid") || ""};
})()`, id, errID)))
	if got["text"] != want {
		c.fail("%s: the error says %q, want %q", what, got["text"], want)
	}
	if got["live"] != "polite" && got["live"] != "assertive" && got["live"] != "alert" {
		c.fail("%s: the error is not announced (aria-live %q)", what, got["live"])
	}
	if !strings.Contains(" "+got["describedby"]+" ", " "+errID+" ") || got["invalid"] != "true" {
		c.fail("%s: field #%s is not tied to its error: aria-describedby %q, aria-invalid %q", what, id, got["describedby"], got["invalid"])
	}
}

// expectFocusVisible presses Tab until the element sel has the focus
// (at most ten times) and checks the focus shows: an outline or a ring.
func (c *chromeTab) expectFocusVisible(sel string) {
	c.t.Helper()
	for range 10 {
		c.do("press Tab", chromedp.KeyEvent("\t"))
		focused := chromeRun(c, "what has the focus", chromedp.Evaluate[bool](fmt.Sprintf(`document.activeElement === document.querySelector(%q)`, sel)))
		if !focused {
			continue
		}
		style := chromeRun(c, "the focus style", chromedp.Evaluate[string](`(() => {
  const s = getComputedStyle(document.activeElement);
  return s.outlineStyle === "none" || s.outlineWidth === "0px" ? s.boxShadow : s.outlineStyle + " " + s.outlineWidth;
})()`))
		if style == "" || style == "none" {
			c.fail("the focus on %s does not show", sel)
		}
		return
	}
	c.fail("Tab never reached %s", sel)
}
