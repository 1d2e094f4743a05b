package apply_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/novasphere/wukong/lib/apply"
)

func TestContains(t *testing.T) {
	cases := []struct {
		name       string
		live, want any
		contains   bool
	}{
		{"equal scalars", "a", "a", true},
		{"different scalars", "a", "b", false},
		{"int and float of the same value", int64(2), float64(2), true},
		{"extra keys in live", map[string]any{"a": "1", "b": "2"}, map[string]any{"a": "1"}, true},
		{"missing key in live", map[string]any{"b": "2"}, map[string]any{"a": "1"}, false},
		{"nested difference", map[string]any{"a": map[string]any{"x": "1"}}, map[string]any{"a": map[string]any{"x": "2"}}, false},
		{"nil in want matches absent", map[string]any{}, map[string]any{"a": nil}, true},
		{"empty map in want matches absent", map[string]any{}, map[string]any{"a": map[string]any{}}, true},
		{"empty list in want matches absent", map[string]any{}, map[string]any{"a": []any{}}, true},
		{"nil in want against a value", map[string]any{"a": "x"}, map[string]any{"a": nil}, false},
		{"lists element-wise with defaults in live", []any{map[string]any{"n": "a", "d": "x"}}, []any{map[string]any{"n": "a"}}, true},
		{"lists of different length", []any{"a", "b"}, []any{"a"}, false},
		{"list order matters", []any{"b", "a"}, []any{"a", "b"}, false},
		{"type mismatch", map[string]any{"a": "1"}, map[string]any{"a": map[string]any{"x": "1"}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.contains, apply.Contains(tc.live, tc.want))
		})
	}
}
