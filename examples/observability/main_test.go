package main

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	for _, jsonLogs := range []bool{false, true} {
		var out bytes.Buffer
		if err := run(&out, jsonLogs); err != nil {
			t.Fatalf("run(json=%v) = %v", jsonLogs, err)
		}
		s := out.String()
		for _, want := range []string{`grpc_code="OK"`, `grpc_code="InvalidArgument"`, `"TraceID"`, "finished call"} {
			if !strings.Contains(s, want) {
				t.Errorf("json=%v: output lacks %s", jsonLogs, want)
			}
		}
	}
}
