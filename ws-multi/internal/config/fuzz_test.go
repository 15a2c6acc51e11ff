// This file is part of package config, duplicated in ws-single on purpose; they may diverge.

package config

import (
	"errors"
	"strings"
	"testing"
)

// FuzzLoad sets one variable (chosen by index) to an arbitrary value: Load
// must not panic, an accepted Config must pass Validate, and every refusal
// must be an *Error naming a WS_ variable.
func FuzzLoad(f *testing.F) {
	vars := variables()
	for i, seed := range []string{"", "0", "-1", "1.5", "abc", "10s", "true", "a,,b", "*.example.com", "[", "NaN", "1e309", ":99999"} {
		f.Add(uint8(i), seed)
	}
	f.Fuzz(func(t *testing.T, which uint8, value string) {
		name := vars[int(which)%len(vars)].name
		c, err := Load(env(map[string]string{name: value}))
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("%s=%q: Load accepted a Config that Validate refuses: %v", name, value, verr)
			}
			return
		}
		for _, e := range unjoin(err) {
			var ce *Error
			if !errors.As(e, &ce) || !strings.HasPrefix(ce.Var, "WS_") {
				t.Fatalf("%s=%q: error %v is not a *config.Error naming a variable", name, value, e)
			}
		}
	})
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
