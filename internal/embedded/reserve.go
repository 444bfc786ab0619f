package embedded

import "github.com/cdcq/cdcq/internal/jobs"

// reserver is an Engine that can make room for a source table's rows
// before they arrive.
type reserver interface {
	// Reserve sizes the state of the sources that read table
	// ("<schema>.<table>") for about rows rows.
	Reserve(table string, rows int64)
}

// Reserve acts once per table: the first estimate the capture gives.
func (e *ivmEngine) Reserve(table string, rows int64) {
	if e.reserved[table] {
		return
	}
	if e.reserved == nil {
		e.reserved = map[string]bool{}
	}
	e.reserved[table] = true
	for i, src := range e.plan.Sources {
		if src.Schema+"."+src.Name == table {
			e.q.Reserve(i, rows)
		}
	}
}

// reserveFor returns what sizes eng's state from the capture's estimates,
// nil when eng cannot.
func reserveFor(eng Engine) func(jobs.SnapshotProgress) {
	r, ok := eng.(reserver)
	if !ok {
		return nil
	}
	return func(sp jobs.SnapshotProgress) {
		for _, t := range sp.Tables {
			if t.RowsEstimate > 0 {
				r.Reserve(t.Schema+"."+t.Table, t.RowsEstimate)
			}
		}
	}
}
