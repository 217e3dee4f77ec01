package main

// The writing of results, shared by every section of the benchmark: the
// machine's description, Markdown and plain-text tables, and horizontal
// bar charts in SVG (written here, without dependencies). Sections
// (per-call, tail latency, scale) build tables and bar groups and call
// these helpers; they share nothing else.

import (
	"bufio"
	"fmt"
	"html"
	"math"
	"os"
	"runtime"
	"strings"
)

// machine describes where the figures were measured: Go version,
// GOOS/GOARCH, CPU model and count.
func machine() string {
	model := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%s, %s/%s, CPU %q, nproc %d (GOMAXPROCS %d)",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, model, runtime.NumCPU(), runtime.GOMAXPROCS(0))
}

// table is a table of strings; the first column is left-aligned, the
// others right-aligned.
type table struct {
	header []string
	rows   [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// markdown returns t as a GitHub Markdown table.
func (t *table) markdown() string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(t.header, " | ") + " |\n|")
	for i := range t.header {
		if i == 0 {
			b.WriteString(" :--- |")
		} else {
			b.WriteString(" ---: |")
		}
	}
	b.WriteString("\n")
	for _, r := range t.rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return b.String()
}

// text returns t with its columns padded, for a terminal.
func (t *table) text() string {
	width := make([]int, len(t.header))
	for _, r := range append([][]string{t.header}, t.rows...) {
		for i, c := range r {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	for _, r := range append([][]string{t.header}, t.rows...) {
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			if i == 0 {
				b.WriteString(c + pad)
			} else {
				b.WriteString("  " + pad + c)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// bar is one bar of a chart: a value and, when hasRange, a whisker from
// lo to hi (a spread such as quartiles).
type bar struct {
	label    string
	value    float64
	lo, hi   float64
	hasRange bool
}

// barGroup is a titled group of bars, drawn one under the other.
type barGroup struct {
	title string
	bars  []bar
}

// writeBarSVG writes a horizontal bar chart of groups to path.
func writeBarSVG(path, title string, groups []barGroup) error {
	return writeBarSVGRef(path, title, groups, math.NaN())
}

// writeBarSVGRef is writeBarSVG with a dashed vertical line at ref (1 for
// ratios to a reference); NaN draws none.
func writeBarSVGRef(path, title string, groups []barGroup, ref float64) error {
	const (
		width   = 900
		labelW  = 330 // left margin for the bar labels
		valueW  = 150 // right margin for the values
		barH    = 18
		gap     = 6
		groupH  = 28 // a group's title
		top     = 44
		bottomH = 34
	)
	maxV := 0.0
	if !math.IsNaN(ref) {
		maxV = ref
	}
	n := 0
	for _, g := range groups {
		for _, b := range g.bars {
			maxV = max(maxV, b.value)
			if b.hasRange {
				maxV = max(maxV, b.hi)
			}
			n++
		}
	}
	if maxV <= 0 {
		maxV = 1
	}
	scaleMax := niceCeil(maxV)
	plotW := float64(width - labelW - valueW)
	x := func(v float64) float64 { return labelW + plotW*v/scaleMax }
	height := top + len(groups)*groupH + n*(barH+gap) + bottomH

	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&s, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&s, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", 10, esc(title))
	// Grid and axis labels.
	plotTop, plotBottom := top, height-bottomH
	step := scaleMax / 5
	for i := 0; i <= 5; i++ {
		v := step * float64(i)
		fmt.Fprintf(&s, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x(v), plotTop, x(v), plotBottom)
		fmt.Fprintf(&s, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s</text>`+"\n", x(v), plotBottom+16, trimFloat(v))
	}
	y := top
	colors := []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7"}
	for _, g := range groups {
		fmt.Fprintf(&s, `<text x="10" y="%d" font-weight="bold">%s</text>`+"\n", y+18, esc(g.title))
		y += groupH
		for i, b := range g.bars {
			c := colors[i%len(colors)]
			fmt.Fprintf(&s, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelW-8, y+13, esc(b.label))
			w := max(x(b.value)-labelW, 0)
			fmt.Fprintf(&s, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", labelW, y, w, barH, c)
			label := trimFloat(b.value)
			if b.hasRange {
				mid := y + barH/2
				fmt.Fprintf(&s, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#222"/>`+"\n", x(b.lo), mid, x(b.hi), mid)
				fmt.Fprintf(&s, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#222"/>`+"\n", x(b.lo), mid-4, x(b.lo), mid+4)
				fmt.Fprintf(&s, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#222"/>`+"\n", x(b.hi), mid-4, x(b.hi), mid+4)
				label += " [" + trimFloat(b.lo) + "–" + trimFloat(b.hi) + "]"
			}
			fmt.Fprintf(&s, `<text x="%.1f" y="%d">%s</text>`+"\n", x(max(b.value, b.hi))+6, y+13, esc(label))
			y += barH + gap
		}
	}
	if !math.IsNaN(ref) {
		fmt.Fprintf(&s, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#000" stroke-dasharray="4 3"/>`+"\n", x(ref), plotTop, x(ref), plotBottom)
	}
	s.WriteString("</svg>\n")
	return os.WriteFile(path, []byte(s.String()), 0o644)
}

// niceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func esc(s string) string { return html.EscapeString(s) }

// writeMarkdown writes a results file: a title, the machine and command
// line, then body.
func writeMarkdown(path, title, command, body string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "# %s\n\nMachine: %s\n\nCommand: `%s`\n\n%s", title, machine(), command, body)
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
