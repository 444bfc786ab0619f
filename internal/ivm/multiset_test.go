package ivm

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestMultisetMatchesReference applies random inserts and retractions
// (runs of inserts, as a snapshot makes, and mixed runs, as streaming
// does) to a multiset and to a plain count per value, and compares MIN,
// MAX and which of equal values is kept (a numeric 1.0 and 1.00 compare
// equal; the first to arrive stays) after every step.
func TestMultisetMatchesReference(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		var m multiset
		// ref counts per value (by coefficient at scale 2); kept is the
		// scale of the representation the multiset must show.
		ref := map[int64]int64{}
		kept := map[int64]int32{}
		distinct := []int{3, 50, 1000, 20000}[seed%4]
		value := func(c int64, scale int32) Value {
			if scale == 1 {
				return numericValue(dec{scale: 1, c: c / 10})
			}
			return numericValue(dec{scale: 2, c: c})
		}
		for step := 0; step < 30000; step++ {
			insertRun := (step/2000)%2 == 0
			c := int64(rng.IntN(distinct)) * 10
			scale := int32(2)
			if rng.IntN(5) == 0 {
				scale = 1
			}
			if insertRun || rng.IntN(2) == 0 {
				if ref[c] == 0 {
					kept[c] = scale
				}
				ref[c]++
				m.add(value(c, scale), 1)
			} else {
				if ref[c] > 0 {
					ref[c]--
					if ref[c] == 0 {
						delete(kept, c)
					}
				}
				m.add(value(c, scale), -1)
			}
			if step%97 != 0 && step%2000 != 1999 {
				continue
			}
			keys := make([]int64, 0, len(ref))
			for k, n := range ref {
				if n > 0 {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			gotMin, gotMax := m.min(), m.max()
			if len(keys) == 0 {
				if !gotMin.IsNull() || !gotMax.IsNull() {
					t.Fatalf("seed %d step %d: empty, min %v max %v", seed, step, gotMin, gotMax)
				}
				continue
			}
			lo, hi := keys[0], keys[len(keys)-1]
			if want := value(lo, kept[lo]); compare(gotMin, want) != 0 || gotMin.scale != want.scale {
				t.Fatalf("seed %d step %d: min %+v, want %+v", seed, step, gotMin, want)
			}
			if want := value(hi, kept[hi]); compare(gotMax, want) != 0 || gotMax.scale != want.scale {
				t.Fatalf("seed %d step %d: max %+v, want %+v", seed, step, gotMax, want)
			}
			if step%2000 == 1999 {
				// Every value, in order, with its count and representation.
				m.merge()
				var got []msEntry
				for _, c := range m.chunks {
					got = append(got, c...)
				}
				if len(got) != len(keys) || m.n != len(keys) {
					t.Fatalf("seed %d step %d: %d values (n %d), want %d", seed, step, len(got), m.n, len(keys))
				}
				for i, k := range keys {
					want := value(k, kept[k])
					if compare(got[i].v, want) != 0 || got[i].v.scale != want.scale || got[i].count != ref[k] {
						t.Fatalf("seed %d step %d: value %d is %+v×%d, want %+v×%d", seed, step, i, got[i].v, got[i].count, want, ref[k])
					}
				}
			}
		}
	}
}

// BenchmarkMultisetSnapshot inserts 1,000 values in random order into each
// of 1,000 multisets, as a snapshot of a 1M-row table grouped into 1,000
// groups does for MIN and MAX, reading the minimum every 4,000 rows.
func BenchmarkMultisetSnapshot(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	vals := make([]Value, 1_000_000)
	for i := range vals {
		vals[i] = numericValue(dec{scale: 2, c: int64(rng.IntN(1_000_000))})
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		sets := make([]multiset, 1000)
		for i, v := range vals {
			sets[i%1000].add(v, 1)
			if i%4000 == 3999 {
				for j := range sets {
					sets[j].min()
					sets[j].max()
				}
			}
		}
	}
	b.ReportMetric(float64(b.N*len(vals))/b.Elapsed().Seconds(), "inserts/s")
}
