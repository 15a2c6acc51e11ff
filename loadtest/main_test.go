package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRunDispatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		code       int
		stdoutPart string
		stderrPart string
		stderrNot  string
	}{
		{name: "no command", args: nil, code: 2, stderrPart: "usage: loadtest"},
		{name: "help lists public commands only", args: []string{"--help"}, code: 0, stderrPart: "broadcast", stderrNot: "worker"},
		{name: "version", args: []string{"--version"}, code: 0, stdoutPart: "loadtest v0.0.0-dev"},
		{name: "unknown command", args: []string{"nope"}, code: 2, stderrPart: `unknown command "nope"`},
		{name: "subcommand help", args: []string{"conform", "--help"}, code: 0, stderrPart: "usage: loadtest conform"},
		{name: "hidden command still runs", args: []string{"worker", "extra"}, code: 1, stderrPart: "loadtest worker:"},
		{name: "token is listed", args: []string{"--help"}, code: 0, stderrPart: "token "},
		{name: "token help", args: []string{"token", "--help"}, code: 0, stderrPart: "usage: loadtest token"},
		{name: "token prints a token", args: []string{"token", "--secret", "0123456789abcdef0123456789abcdef", "--issuer", "i", "--audience", "a", "--channels", "trades:*"},
			code: 0, stdoutPart: "eyJ"},
		{name: "token without a secret", args: []string{"token", "--secret", "", "--issuer", "i", "--audience", "a"},
			code: 2, stderrPart: "loadtest token: --secret: empty"},
		{name: "token with a bad pattern", args: []string{"token", "--secret", "0123456789abcdef0123456789abcdef", "--issuer", "i", "--audience", "a", "--channels", "trades:a*b"},
			code: 2, stderrPart: "loadtest token: --channels: pattern"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.stdoutPart) {
				t.Errorf("stdout %q, want it to contain %q", stdout.String(), tt.stdoutPart)
			}
			if !strings.Contains(stderr.String(), tt.stderrPart) {
				t.Errorf("stderr %q, want it to contain %q", stderr.String(), tt.stderrPart)
			}
			if tt.stderrNot != "" && strings.Contains(stderr.String(), tt.stderrNot) {
				t.Errorf("stderr %q, want no %q", stderr.String(), tt.stderrNot)
			}
		})
	}
}
