package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWriteKinds: writes are split by kind and add up to all writes;
// reads are not counted.
func TestWriteKinds(t *testing.T) {
	r := Requests{
		ByVerb: map[string]int64{"get": 7, "patch": 9, "create": 6},
		ByResource: map[string]int64{
			"get wukongs": 7, "patch wukongs/status": 4, "patch wukongs": 1,
			"patch datavolumes": 1, "create datavolumes": 1, "patch virtualmachines": 1,
			"create events": 3, "patch events": 1, "create secrets": 1, "create leases": 1,
			"patch network-attachment-definitions": 1,
		},
	}
	got := WriteKinds(r)
	assert.Equal(t, map[string]int64{
		KindStatus: 4, KindWukong: 1, KindEvents: 4, KindOther: 1,
		kindChild + "datavolumes": 2, kindChild + "virtualmachines": 1, kindChild + "secrets": 1,
		kindChild + "network-attachment-definitions": 1,
	}, got)
	var sum int64
	for _, v := range got {
		sum += v
	}
	assert.Equal(t, r.Writes(), sum)
	assert.Equal(t, []string{KindStatus, KindWukong, kindChild + "datavolumes", kindChild + "network-attachment-definitions",
		kindChild + "secrets", kindChild + "virtualmachines", KindEvents, KindOther}, writeKindOrder(got, nil))
}

// TestRowsTargets: the table carries issue 19's targets and says whether
// each was met, from the ratios of one run.
func TestRowsTargets(t *testing.T) {
	res := func(opWrites, opConverge float64) *Result {
		n := 10
		r := &Result{Options: ResultOptions{N: n}}
		r.Floor.Converge = Timing{Batch1: 10, Batch2: 40, Total: 50}
		r.Floor.Client = Requests{ByVerb: map[string]int64{"create": 50}, ByResource: map[string]int64{"create datavolumes": 10,
			"create persistentvolumeclaims": 10, "create secrets": 10, "create virtualmachines": 10, "create network-attachment-definitions": 10}}
		r.Operator.Converge = Timing{Total: opConverge}
		w := int64(opWrites * float64(n))
		r.Operator.Manager = Requests{ByVerb: map[string]int64{"patch": w}, ByResource: map[string]int64{"patch wukongs/status": w}}
		return r
	}
	find := func(rows []Row, prefix string) Row {
		for _, r := range rows {
			if strings.HasPrefix(r.Metric, prefix) {
				return r
			}
		}
		t.Fatalf("no row %q", prefix)
		return Row{}
	}
	ok := rows(res(10, 60))
	w := find(ok, "client writes / Wukong")
	require.NotNil(t, w.Met)
	assert.True(t, *w.Met, "10 writes against the floor's 5 is 2.0x")
	assert.Equal(t, "≤ 2.0× floor", w.Target)
	c := find(ok, "converge")
	require.NotNil(t, c.Met)
	assert.True(t, *c.Met, "60s against 50s is 1.2x")
	assert.Equal(t, "≤ 1.2× floor", c.Target)
	st := find(ok, "  "+KindStatus)
	require.NotNil(t, st.Operator)
	assert.InDelta(t, 10.0, *st.Operator, 1e-9)
	require.NotNil(t, st.Floor)
	assert.Zero(t, *st.Floor, "the floor has no Wukong to patch")
	dv := find(ok, "  "+kindChild+"datavolumes")
	require.NotNil(t, dv.Floor)
	assert.InDelta(t, 1.0, *dv.Floor, 1e-9)

	missed := rows(res(10.5, 61))
	assert.False(t, *find(missed, "client writes / Wukong").Met)
	assert.False(t, *find(missed, "converge").Met)
}

func TestStalledPasses(t *testing.T) {
	m := time.Minute
	assert.Equal(t, 7, stalledPasses(m, 30*m, 0, time.Hour), "at 0, 1, 2, 4, 8, 16 and 32 minutes")
	assert.Equal(t, 2, stalledPasses(m, 30*m, 23*time.Hour, 24*time.Hour))
	assert.Equal(t, 60, stalledPasses(m, m, 0, time.Hour), "a fixed one-minute retry")
}
