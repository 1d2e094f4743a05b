package mapping

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRunStrategyExhaustive covers every combination of runStrategy (6
// values incl. unset), autoStart (unset, true, false) and restartPolicy (4
// values incl. unset). "!autoStart" and "!restartPolicy" mean a
// *RunStrategyError (Conflict) naming that field.
func TestRunStrategyExhaustive(t *testing.T) {
	const asConflict, rpConflict = "!autoStart", "!restartPolicy"
	policies := []string{"", "Always", "OnFailure", "Never"}
	table := []struct {
		runStrategy string
		autoStart   string    // "", "true", "false"
		want        [4]string // by restartPolicy: "", Always, OnFailure, Never
	}{
		{"", "", [4]string{"Always", "Always", "RerunOnFailure", "Once"}},
		{"", "true", [4]string{"Always", "Always", "RerunOnFailure", "Once"}},
		{"", "false", [4]string{"Halted", "Halted", "Halted", "Halted"}},

		{"Always", "", [4]string{"Always", "Always", rpConflict, rpConflict}},
		{"Always", "true", [4]string{"Always", "Always", rpConflict, rpConflict}},
		{"Always", "false", [4]string{asConflict, asConflict, asConflict, asConflict}},

		{"RerunOnFailure", "", [4]string{"RerunOnFailure", rpConflict, "RerunOnFailure", rpConflict}},
		{"RerunOnFailure", "true", [4]string{"RerunOnFailure", rpConflict, "RerunOnFailure", rpConflict}},
		{"RerunOnFailure", "false", [4]string{asConflict, asConflict, asConflict, asConflict}},

		{"Once", "", [4]string{"Once", rpConflict, rpConflict, "Once"}},
		{"Once", "true", [4]string{"Once", rpConflict, rpConflict, "Once"}},
		{"Once", "false", [4]string{asConflict, asConflict, asConflict, asConflict}},

		{"Manual", "", [4]string{"Manual", rpConflict, rpConflict, "Manual"}},
		{"Manual", "true", [4]string{asConflict, asConflict, asConflict, asConflict}},
		{"Manual", "false", [4]string{"Manual", rpConflict, rpConflict, "Manual"}},

		{"Halted", "", [4]string{"Halted", "Halted", "Halted", "Halted"}},
		{"Halted", "true", [4]string{asConflict, asConflict, asConflict, asConflict}},
		{"Halted", "false", [4]string{"Halted", "Halted", "Halted", "Halted"}},
	}
	seen := map[string]bool{}
	for _, row := range table {
		for i, rp := range policies {
			var autoStart *bool
			switch row.autoStart {
			case "true":
				autoStart = ptrTo(true)
			case "false":
				autoStart = ptrTo(false)
			}
			name := fmt.Sprintf("runStrategy=%q/autoStart=%q/restartPolicy=%q", row.runStrategy, row.autoStart, rp)
			seen[name] = true
			want := row.want[i]
			t.Run(name, func(t *testing.T) {
				got, err := runStrategyOf(row.runStrategy, autoStart, rp)
				switch want {
				case asConflict, rpConflict:
					var conflict *RunStrategyError
					require.True(t, errors.As(err, &conflict), "want a *RunStrategyError, got %v (strategy %q)", err, got)
					assert.True(t, conflict.Conflict)
					field := fieldAutoStart
					if want == rpConflict {
						field = fieldRestartPolicy
					}
					assert.Equal(t, field, conflict.Field)
					assert.Contains(t, conflict.Error(), field)
					assert.Empty(t, got)
				default:
					require.NoError(t, err)
					assert.Equal(t, want, string(got))
				}
			})
		}
	}
	assert.Len(t, seen, 6*3*4, "every combination is covered exactly once")
}

func TestRunStrategyInvalid(t *testing.T) {
	tests := []struct {
		name, runStrategy, restartPolicy, wantField string
	}{
		{"unknown runStrategy", "Sometimes", "", fieldRunStrategy},
		{"WaitAsReceiver is not offered", "WaitAsReceiver", "", fieldRunStrategy},
		{"unknown restartPolicy", "", "Maybe", fieldRestartPolicy},
		{"lowercase restartPolicy", "Always", "always", fieldRestartPolicy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runStrategyOf(tt.runStrategy, nil, tt.restartPolicy)
			var inv *RunStrategyError
			require.True(t, errors.As(err, &inv), "got %v", err)
			assert.False(t, inv.Conflict)
			assert.Equal(t, tt.wantField, inv.Field)
		})
	}
}

func ptrTo[T any](v T) *T { return &v }
