package main

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestDemo keeps `go -C examples run ./addsvc` true: it runs the demo and
// checks what its tables show. The properties checked are the ones the
// demo is about, with wide margins; no timing is checked.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out, options{servers: 3, admin: "127.0.0.1:0"}); err != nil {
		t.Fatalf("run = %v, want nil; output:\n%s", err, &out)
	}
	text := out.String()
	t.Logf("output:\n%s", text)
	rows := parseRows(t, text)

	// The slowed server's share drops.
	steady, slowed := rows["steady"], rows["s2-slow"]
	if s, w := slowed.share[1], steady.share[1]; s >= w || s >= 33 {
		t.Errorf("s2's share: %d%% steady, %d%% slowed; want it to drop, below 33%%", w, s)
	}

	// The failing server is ejected, then readmitted and serving.
	if m := regexp.MustCompile(`balancer: s3 ejected (\d+)× during the phase`).FindStringSubmatch(text); m == nil || m[1] == "0" {
		t.Errorf("s3 not ejected while failing (%v)", m)
	}
	if m := regexp.MustCompile(`balancer: s3 readmitted; it served (\d+) calls since it healed`).FindStringSubmatch(text); m == nil || m[1] == "0" {
		t.Errorf("s3 not readmitted, or served no calls, after it healed (%v)", m)
	}

	// Concat's breaker opens while every server fails it, and closes after.
	if !regexp.MustCompile(`(?m)^concat-failing[^\n]*\n(    [^\n]*\n)*    Concat breaker: closed → open`).MatchString(text) {
		t.Error("Concat's breaker did not open while every server failed Concat")
	}
	if !regexp.MustCompile(`(?m)^concat-healed[^\n]*\n(    [^\n]*\n)*    Concat breaker: [^\n]*→ closed\n`).MatchString(text) {
		t.Error("Concat's breaker did not close once the servers healed")
	}

	// No call fails across the rolling restart and the etcd outage.
	for _, name := range []string{"steady", "rolling-restart", "etcd-down"} {
		r := rows[name]
		if r.calls == 0 || r.codes != "OK="+strconv.Itoa(r.calls) {
			t.Errorf("%s: %d calls, codes %s; want all OK", name, r.calls, r.codes)
		}
	}
	if !strings.Contains(text, "0 registrations left in etcd") {
		t.Error("registrations left in etcd after shutdown")
	}

	// The business metrics count every sum served, across the rolling
	// restart, and the two refused calls of the introduction.
	ok := 1 // Sum(1, 2)
	for _, r := range rows {
		ok += r.ok
	}
	b := parseBusiness(t, text)
	if b.sums < ok || b.concats == 0 || b.overflow != 1 || b.tooLong != 1 {
		t.Errorf("business metrics: got %+v, want at least %d sums (the successful Sum calls), some concats, 1 overflow, 1 too long", b, ok)
	}
}

type businessLine struct{ sums, concats, overflow, tooLong int }

var businessRE = regexp.MustCompile(`(?m)^business metrics \(addsvc_\* on /metrics\): (\d+) sums, (\d+) concatenations; refused: Sum (\d+) \(overflow\), Concat (\d+) \(too long\)$`)

// parseBusiness returns the counts of the business metrics line.
func parseBusiness(t *testing.T, text string) businessLine {
	t.Helper()
	m := businessRE.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no business metrics line in the output:\n%s", text)
	}
	var n [4]int
	for i := range n {
		n[i], _ = strconv.Atoi(m[i+1])
	}
	return businessLine{n[0], n[1], n[2], n[3]}
}

// TestDemoTLS runs the demo's first phase over TLS.
func TestDemoTLS(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out, options{tls: true, servers: 3, admin: "127.0.0.1:0", short: true}); err != nil {
		t.Fatalf("run(tls) = %v, want nil; output:\n%s", err, &out)
	}
	r := parseRows(t, out.String())["steady"]
	if r.calls == 0 || r.codes != "OK="+strconv.Itoa(r.calls) {
		t.Errorf("steady over TLS: %d calls, codes %s; want all OK", r.calls, r.codes)
	}
	if b := parseBusiness(t, out.String()); b.sums <= r.calls || b.overflow != 1 || b.tooLong != 1 {
		t.Errorf("business metrics over TLS: got %+v, want more than %d sums, 1 overflow, 1 too long", b, r.calls)
	}
}

func TestDemoTooFewServers(t *testing.T) {
	if err := run(new(bytes.Buffer), options{servers: 2, admin: "127.0.0.1:0"}); err == nil {
		t.Fatal("run with 2 servers succeeded, want an error")
	}
}

type tableRow struct {
	calls int
	codes string
	ok    int // calls with OK
	share []int
}

var rowRE = regexp.MustCompile(`(?m)^([a-z0-9-]+)\s+(\d+)\s+(\S+)\s+\S+\s+\S+\s+((?:\s*\d+%)+)$`)

// parseRows returns the table's rows by phase.
func parseRows(t *testing.T, text string) map[string]tableRow {
	t.Helper()
	rows := map[string]tableRow{}
	for _, m := range rowRE.FindAllStringSubmatch(text, -1) {
		calls, _ := strconv.Atoi(m[2])
		r := tableRow{calls: calls, codes: m[3]}
		for _, c := range strings.Split(r.codes, ",") {
			if n, found := strings.CutPrefix(c, "OK="); found {
				r.ok, _ = strconv.Atoi(n)
			}
		}
		for _, f := range strings.Fields(m[4]) {
			n, _ := strconv.Atoi(strings.TrimSuffix(f, "%"))
			r.share = append(r.share, n)
		}
		rows[m[1]] = r
	}
	if len(rows) == 0 {
		t.Fatalf("no table rows in the output:\n%s", text)
	}
	return rows
}
