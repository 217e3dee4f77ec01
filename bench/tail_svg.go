package main

import (
	"fmt"
	"html"
	"math"
	"os"
	"strings"
	"time"
)

// writeTailSVG writes a grouped bar chart of rows to path: per balancer, one
// bar each for p50, p99 and p99.9, on a logarithmic latency axis in
// milliseconds (the percentiles span two decades).
func writeTailSVG(path string, rows []TailRow) error {
	return os.WriteFile(path, []byte(tailSVG(rows)), 0o644)
}

func tailSVG(rows []TailRow) string {
	const (
		width, height                    = 900, 560
		left, right, top, bottom         = 80, 20, 50, 110
		plotW, plotH                     = width - left - right, height - top - bottom
		barGap, groupPad         float64 = 2, 0.22
	)
	series := []struct {
		name  string
		color string
		v     func(TailRow) time.Duration
	}{
		{"p50", "#4e79a7", func(r TailRow) time.Duration { return r.P50 }},
		{"p99", "#f28e2b", func(r TailRow) time.Duration { return r.P99 }},
		{"p99.9", "#e15759", func(r TailRow) time.Duration { return r.P999 }},
	}
	// Axis range: whole decades around the data, at least 0.1 to 10 ms.
	lo, hi := 0.1, 10.0
	for _, r := range rows {
		for _, s := range series {
			if ms := tailMsF(s.v(r)); ms > 0 {
				lo, hi = math.Min(lo, ms), math.Max(hi, ms)
			}
		}
	}
	loExp, hiExp := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if hiExp <= loExp {
		hiExp = loExp + 1
	}
	y := func(ms float64) float64 {
		if ms <= 0 {
			return top + plotH
		}
		f := (math.Log10(ms) - loExp) / (hiExp - loExp)
		return top + plotH - math.Max(0, math.Min(1, f))*plotH
	}

	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&sb, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&sb, `<text x="%d" y="24" text-anchor="middle" font-size="15" font-weight="bold">Latency per balancer, one of four backends 10× slower (median of runs)</text>`+"\n", width/2)

	// Grid and tick labels: 1, 2, 5 per decade.
	for e := loExp; e <= hiExp; e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if math.Log10(v) > hiExp+1e-9 {
				break
			}
			yy := y(v)
			stroke, dash := "#bbb", ""
			if m != 1 {
				stroke, dash = "#e3e3e3", ` stroke-dasharray="3,3"`
			}
			fmt.Fprintf(&sb, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"%s/>`+"\n", left, yy, left+plotW, yy, stroke, dash)
			fmt.Fprintf(&sb, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", left-6, yy, tailTick(v))
		}
	}
	fmt.Fprintf(&sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, top, left, top+plotH)
	fmt.Fprintf(&sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, top+plotH, left+plotW, top+plotH)
	fmt.Fprintf(&sb, `<text transform="translate(22,%d) rotate(-90)" text-anchor="middle">latency from intended send time, ms (log scale)</text>`+"\n", top+plotH/2)

	if n := len(rows); n > 0 {
		groupW := float64(plotW) / float64(n)
		barW := (groupW*(1-groupPad) - barGap*float64(len(series)-1)) / float64(len(series))
		for i, r := range rows {
			x0 := float64(left) + float64(i)*groupW + groupW*groupPad/2
			for j, s := range series {
				ms := tailMsF(s.v(r))
				x := x0 + float64(j)*(barW+barGap)
				yy := y(ms)
				fmt.Fprintf(&sb, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %.2f ms</title></rect>`+"\n",
					x, yy, barW, float64(top+plotH)-yy, s.color, html.EscapeString(r.Balancer), s.name, ms)
				fmt.Fprintf(&sb, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%s</text>`+"\n", x+barW/2, yy-3, tailTick(ms))
			}
			cx := float64(left) + (float64(i)+0.5)*groupW
			fmt.Fprintf(&sb, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", cx, top+plotH+18, html.EscapeString(r.Balancer))
			fmt.Fprintf(&sb, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555" font-size="11">slow share %.1f%%</text>`+"\n", cx, top+plotH+34, 100*r.SlowShare)
		}
	}
	// Legend.
	lx := left + 10
	for _, s := range series {
		fmt.Fprintf(&sb, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n", lx, height-40, s.color, lx+16, height-30, s.name)
		lx += 80
	}
	fmt.Fprintf(&sb, `<text x="%d" y="%d" fill="#555" font-size="11">service time %v (3 backends), %v (1 backend); open-loop Poisson load</text>`+"\n", lx+10, height-30, tailFast, tailSlow)
	sb.WriteString("</svg>\n")
	return sb.String()
}

func tailMsF(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// tailTick formats a millisecond value with the precision its size needs.
func tailTick(ms float64) string {
	switch {
	case ms >= 10:
		return fmt.Sprintf("%.0f", ms)
	case ms >= 1:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", ms), ".0")
	default:
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", ms), "0"), ".")
	}
}
