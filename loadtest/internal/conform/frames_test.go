package conform

import (
	"errors"
	"strings"
	"testing"
)

func TestSplitFrame(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		frame   string
		wantOps []string
		wantErr string
	}{
		{name: "one reply", frame: `{"op":"pong","id":"1"}`, wantOps: []string{"pong"}},
		{name: "batch", frame: "{\"op\":\"message\",\"data\":null}\n{\"op\":\"pong\"}\n{\"op\":\"message\",\"data\":{\"a\":1}}", wantOps: []string{"message", "pong", "message"}},
		{name: "trailing newline", frame: "{\"op\":\"pong\"}\n", wantErr: "empty line"},
		{name: "doubled newline", frame: "{\"op\":\"pong\"}\n\n{\"op\":\"pong\"}", wantErr: "empty line"},
		{name: "empty frame", frame: "", wantErr: "empty line"},
		{name: "not json", frame: "{\"op\":\"pong\"}\nhello", wantErr: "line 2 of 2: not a JSON object"},
		{name: "array", frame: `[{"op":"pong"}]`, wantErr: "not a JSON object"},
		{name: "null", frame: `null`, wantErr: "not a JSON object"},
		{name: "no op", frame: `{"id":"1"}`, wantErr: "no \"op\""},
		{name: "op wrong type", frame: `{"op":1}`, wantErr: "wrong type"},
		{name: "two objects on a line", frame: `{"op":"pong"}{"op":"pong"}`, wantErr: "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			envs, err := SplitFrame([]byte(tt.frame))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("SplitFrame(%q) error = %v, want one containing %q", tt.frame, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("SplitFrame(%q): %v", tt.frame, err)
			}
			var ops []string
			for _, e := range envs {
				ops = append(ops, e.Op)
			}
			if strings.Join(ops, ",") != strings.Join(tt.wantOps, ",") {
				t.Fatalf("ops %v, want %v", ops, tt.wantOps)
			}
		})
	}
	_, err := SplitFrame([]byte("\n"))
	if !errors.Is(err, ErrEmptyLine) {
		t.Fatalf("error %v does not wrap ErrEmptyLine", err)
	}
}

func TestParseLineFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		line     string
		wantID   *string
		hasData  bool
		wantData string
	}{
		{name: "id absent", line: `{"op":"pong"}`},
		{name: "id present", line: `{"op":"pong","id":"7"}`, wantID: ptr("7")},
		{name: "empty id", line: `{"op":"pong","id":""}`, wantID: ptr("")},
		{name: "null data", line: `{"op":"message","data":null}`, hasData: true, wantData: "null"},
		{name: "object data", line: `{"op":"message","data":{"p":"1"}}`, hasData: true, wantData: `{"p":"1"}`},
		{name: "string data", line: `{"op":"message","data":"a\nb"}`, hasData: true, wantData: `"a\nb"`},
		{name: "no data", line: `{"op":"message"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := ParseLine([]byte(tt.line))
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.wantID == nil && e.ID != nil:
				t.Fatalf("id %q, want absent", *e.ID)
			case tt.wantID != nil && !e.IDIs(*tt.wantID):
				t.Fatalf("id %v, want %q", e.ID, *tt.wantID)
			}
			if e.HasData != tt.hasData {
				t.Fatalf("HasData %v, want %v", e.HasData, tt.hasData)
			}
			if tt.hasData && string(e.Data) != tt.wantData {
				t.Fatalf("data %s, want %s", e.Data, tt.wantData)
			}
			if string(e.Raw) != tt.line {
				t.Fatalf("raw %s, want %s", e.Raw, tt.line)
			}
		})
	}
}

func FuzzSplitFrame(f *testing.F) {
	f.Add([]byte(`{"op":"pong","id":"1"}`))
	f.Add([]byte("{\"op\":\"message\",\"data\":null}\n{\"op\":\"pong\"}"))
	f.Add([]byte("\n"))
	f.Fuzz(func(t *testing.T, frame []byte) {
		envs, err := SplitFrame(frame)
		if err != nil {
			return
		}
		if len(envs) != strings.Count(string(frame), "\n")+1 {
			t.Fatalf("%d envelopes from %d lines", len(envs), strings.Count(string(frame), "\n")+1)
		}
		for _, e := range envs {
			if e.Op == "" || len(e.Raw) == 0 {
				t.Fatalf("envelope without op or raw: %+v", e)
			}
		}
	})
}

func ptr(s string) *string { return &s }
