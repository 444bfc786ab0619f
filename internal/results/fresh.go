package results

import (
	"context"
	"fmt"
	"time"

	"github.com/cdcq/cdcq/internal/leader"
)

// SetFreshThrough records that queryID's result reflects every source
// transaction whose commit was acknowledged to its client before t
// (query_progress.fresh_through; migrations/00810_query_fresh_through.sql
// says exactly what it means). It only moves the time forward, and only
// for a LIVE query: a query catching up, stale or deleted keeps the time
// it had, so its lag grows. It touches nothing else of the progress.
func (s *Store) SetFreshThrough(ctx context.Context, queryID string, t time.Time) error {
	_, err := leader.FencedExec(ctx, s.pool, `UPDATE query_progress SET fresh_through = $2
		WHERE query_id = $1 AND state = $3 AND (fresh_through IS NULL OR fresh_through < $2)`,
		queryID, t, StateLive)
	if err != nil {
		return fmt.Errorf("results: fresh-through time of %s: %w", queryID, err)
	}
	return nil
}
