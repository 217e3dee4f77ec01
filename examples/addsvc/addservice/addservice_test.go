package addservice_test

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/examples/addsvc/addservice"
	"github.com/grpckit/grpckit/metrics"
	addsvcv1 "github.com/grpckit/grpckit/proto/grpckit/addsvc/v1"
)

func TestSum(t *testing.T) {
	s := addservice.New(0)
	for _, tc := range []struct {
		name string
		a, b int64
		want int64
		code codes.Code
	}{
		{"small", 2, 3, 5, codes.OK},
		{"negative", -7, 3, -4, codes.OK},
		{"max", math.MaxInt64 - 1, 1, math.MaxInt64, codes.OK},
		{"overflow", math.MaxInt64, 1, 0, codes.InvalidArgument},
		{"underflow", math.MinInt64, -1, 0, codes.InvalidArgument},
		{"min", math.MinInt64 + 1, -1, math.MinInt64, codes.OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := s.Sum(context.Background(), &addsvcv1.SumRequest{A: tc.a, B: tc.b})
			if status.Code(err) != tc.code || r.GetV() != tc.want {
				t.Fatalf("Sum(%d, %d) = %d, %v; want %d, %v", tc.a, tc.b, r.GetV(), err, tc.want, tc.code)
			}
		})
	}
}

func TestConcat(t *testing.T) {
	s := addservice.New(8)
	if r, err := s.Concat(context.Background(), &addsvcv1.ConcatRequest{A: "abcd", B: "efgh"}); err != nil || r.GetV() != "abcdefgh" {
		t.Fatalf("Concat at the limit = %q, %v; want abcdefgh", r.GetV(), err)
	}
	_, err := s.Concat(context.Background(), &addsvcv1.ConcatRequest{A: "abcd", B: strings.Repeat("e", 5)})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Concat over the limit: got %v, want InvalidArgument", err)
	}
}

// TestMetrics makes sums and concatenations, some refused, and reads the
// business metrics back from the registry.
func TestMetrics(t *testing.T) {
	reg := grpckit.NewRegistry()
	m, err := addservice.NewMetrics(metrics.Prometheus(reg))
	if err != nil {
		t.Fatal(err)
	}
	s := addservice.New(8, addservice.WithMetrics(m))
	// A second service on the same registry counts with the first.
	m2, err := addservice.NewMetrics(metrics.Prometheus(reg))
	if err != nil {
		t.Fatal(err)
	}
	s2 := addservice.New(8, addservice.WithMetrics(m2))
	ctx := context.Background()
	const sums, overflows, concats, refused = 7, 2, 3, 4
	for i := range sums {
		if _, err := s.Sum(ctx, &addsvcv1.SumRequest{A: int64(i), B: 1}); err != nil {
			t.Fatal(err)
		}
	}
	for range overflows {
		_, _ = s2.Sum(ctx, &addsvcv1.SumRequest{A: math.MaxInt64, B: 1})
	}
	for range concats { // 2 bytes each
		if _, err := s2.Concat(ctx, &addsvcv1.ConcatRequest{A: "a", B: "b"}); err != nil {
			t.Fatal(err)
		}
	}
	for range refused {
		_, _ = s.Concat(ctx, &addsvcv1.ConcatRequest{A: "abcd", B: "efghi"})
	}

	got := gather(t, reg)
	for _, tc := range []struct {
		series string
		want   float64
	}{
		{"addsvc_sums_total{}", sums},
		{`addsvc_refused_total{op="sum",reason="overflow"}`, overflows},
		{`addsvc_refused_total{op="concat",reason="too_long"}`, refused},
		{"addsvc_concat_length_bytes_count{}", concats},
		{"addsvc_concat_length_bytes_sum{}", 2 * concats},
		{`addsvc_concat_length_bytes_bucket{le="4"}`, concats},
	} {
		t.Run(tc.series, func(t *testing.T) {
			if v, ok := got[tc.series]; !ok || v != tc.want {
				t.Errorf("got %v (present: %v), want %v; all series:\n%s", v, ok, tc.want, dump(got))
			}
		})
	}

	// Without metrics the service records nothing, and works.
	if _, err := addservice.New(0).Sum(ctx, &addsvcv1.SumRequest{A: 1, B: 2}); err != nil {
		t.Fatal(err)
	}
	if v := gather(t, reg)["addsvc_sums_total{}"]; v != sums {
		t.Errorf("addsvc_sums_total after a call to a service without metrics: got %v, want %v", v, sums)
	}
}

// gather returns the addsvc_ series of reg by name{label="value",...};
// a histogram as name_count, name_sum and name_bucket{le=...}.
func gather(t *testing.T, reg grpckit.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, "addsvc_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			key := func(n string, extra ...string) string {
				return n + "{" + strings.Join(append(labels[:len(labels):len(labels)], extra...), ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[key(name)] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				h := m.GetHistogram()
				out[key(name+"_count")] = float64(h.GetSampleCount())
				out[key(name+"_sum")] = h.GetSampleSum()
				for _, b := range h.GetBucket() {
					out[key(name+"_bucket", fmt.Sprintf("le=%q", fmt.Sprint(b.GetUpperBound())))] = float64(b.GetCumulativeCount())
				}
			}
		}
	}
	return out
}

func dump(series map[string]float64) string {
	var lines []string
	for k, v := range series {
		lines = append(lines, fmt.Sprintf("%s %v", k, v))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
