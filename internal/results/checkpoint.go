package results

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cdcq/cdcq/internal/leader"
	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/zstd"
)

// Checkpoint is an engine's state at a position of its change topics
// (migration 01010): what it needs to go on from Positions after a restart
// instead of reading the topics from their start.
type Checkpoint struct {
	// Fingerprint names what the state was computed for (the query, its
	// plan, the state's format); a reader restores only a checkpoint with
	// the fingerprint it expects.
	Fingerprint string
	// Positions are the next offsets to read, per topic and partition.
	Positions map[string]map[int32]int64
	// CaptureEpochs are the largest capture lease epochs read, per topic
	// and partition, up to Positions.
	CaptureEpochs map[string]map[int32]int64
	// TopicIDs are the Kafka IDs of the topics Positions are of, when
	// the broker gives them: a topic deleted and created again has a new
	// one (nil or empty: unknown).
	TopicIDs map[string]string
	// Events counts the source records the state reflects since the
	// engine last rebuilt from the topics' start.
	Events int64
	// State is the engine's serialised state, uncompressed.
	State []byte
	// WrittenAt is when it was saved (set by LoadCheckpoint).
	WrittenAt time.Time
}

// checkpointChunk bounds one stored piece of a compressed state: a large
// state is sent in several rows rather than one value of hundreds of MiB.
const checkpointChunk = 8 << 20

// maxCheckpointState bounds the uncompressed size LoadCheckpoint accepts,
// so that a corrupt header cannot make it allocate without limit.
const maxCheckpointState = 16 << 30

var (
	zstdEnc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	zstdDec, _ = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxCheckpointState))
)

// SaveCheckpoint replaces the query's checkpoint with c, in one
// transaction. It compresses the state first, outside the transaction. A
// query that is deleted or stale, or that was deleted and created again
// (no progress row), gets ErrDeleted or ErrStale and keeps no checkpoint:
// a runner that did not notice must not leave its state for the query
// created again.
func (s *Store) SaveCheckpoint(ctx context.Context, queryID string, c Checkpoint) error {
	packed := zstdEnc.EncodeAll(c.State, make([]byte, 0, len(c.State)/3))
	positions, err := json.Marshal(c.Positions)
	if err != nil {
		return fmt.Errorf("results: checkpoint of %s: %w", queryID, err)
	}
	epochs, err := json.Marshal(c.CaptureEpochs)
	if err != nil || c.CaptureEpochs == nil {
		epochs = []byte("{}")
	}
	topicIDs, err := json.Marshal(c.TopicIDs)
	if err != nil || c.TopicIDs == nil {
		topicIDs = []byte("{}")
	}
	chunks := (len(packed) + checkpointChunk - 1) / checkpointChunk
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		switch state, err := lockProgress(ctx, tx, queryID); {
		case err != nil:
			return err
		case state == StateStale:
			return ErrStale
		case state != StateLive && state != StateCatchingUp:
			return ErrDeleted
		}
		b := &pgx.Batch{}
		b.Queue(`DELETE FROM query_checkpoints WHERE query_id = $1`, queryID)
		b.Queue(`INSERT INTO query_checkpoints (query_id, fingerprint, positions, capture_epochs, events, state_bytes, chunks, topic_ids)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, queryID, c.Fingerprint, positions, epochs, c.Events, len(c.State), chunks, topicIDs)
		for i := range chunks {
			b.Queue(`INSERT INTO query_checkpoint_chunks (query_id, seq, data) VALUES ($1, $2, $3)`,
				queryID, i, packed[i*checkpointChunk:min((i+1)*checkpointChunk, len(packed))])
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		return leader.CheckFence(ctx, tx) // last, as in MarkStale
	})
	if err != nil {
		return fmt.Errorf("results: save checkpoint of %s: %w", queryID, err)
	}
	return nil
}

// LoadCheckpoint reads the query's checkpoint; ErrNotFound when it has
// none. A checkpoint whose chunks are missing or do not decompress is an
// error (the caller rebuilds instead).
func (s *Store) LoadCheckpoint(ctx context.Context, queryID string) (Checkpoint, error) {
	var c Checkpoint
	var positions, epochs, topicIDs []byte
	var stateBytes int64
	var chunks int
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT fingerprint, positions, capture_epochs, events, state_bytes, chunks, written_at, topic_ids
			FROM query_checkpoints WHERE query_id = $1`, queryID).
			Scan(&c.Fingerprint, &positions, &epochs, &c.Events, &stateBytes, &chunks, &c.WrittenAt, &topicIDs)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if stateBytes < 0 || stateBytes > maxCheckpointState {
			return fmt.Errorf("a state of %d bytes", stateBytes)
		}
		rows, err := tx.Query(ctx, `SELECT data FROM query_checkpoint_chunks WHERE query_id = $1 ORDER BY seq`, queryID)
		if err != nil {
			return err
		}
		var packed []byte
		n := 0
		for rows.Next() {
			var data []byte
			if err := rows.Scan(&data); err != nil {
				return err
			}
			packed = append(packed, data...)
			n++
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if n != chunks {
			return fmt.Errorf("%d of its %d chunks are stored", n, chunks)
		}
		c.State, err = zstdDec.DecodeAll(packed, make([]byte, 0, stateBytes))
		if err != nil {
			return fmt.Errorf("decompress: %w", err)
		}
		if int64(len(c.State)) != stateBytes {
			return fmt.Errorf("the state has %d bytes, %d were written", len(c.State), stateBytes)
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return Checkpoint{}, err
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("results: load checkpoint of %s: %w", queryID, err)
	}
	if err := json.Unmarshal(positions, &c.Positions); err != nil {
		return Checkpoint{}, fmt.Errorf("results: load checkpoint of %s: positions: %w", queryID, err)
	}
	if err := json.Unmarshal(epochs, &c.CaptureEpochs); err != nil {
		return Checkpoint{}, fmt.Errorf("results: load checkpoint of %s: capture epochs: %w", queryID, err)
	}
	var ids map[string]string
	if err := json.Unmarshal(topicIDs, &ids); err != nil {
		return Checkpoint{}, fmt.Errorf("results: load checkpoint of %s: topic ids: %w", queryID, err)
	}
	if len(ids) > 0 { // '{}': unknown, as nil
		c.TopicIDs = ids
	}
	return c, nil
}

// DeleteCheckpoint forgets the query's checkpoint (none is fine).
func (s *Store) DeleteCheckpoint(ctx context.Context, queryID string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM query_checkpoints WHERE query_id = $1`, queryID); err != nil {
		return fmt.Errorf("results: delete checkpoint of %s: %w", queryID, err)
	}
	return nil
}

// queueDeleteCheckpoint queues the deletion of the query's checkpoint, for
// the writes that forget its result (MarkDeleted, Reset).
func queueDeleteCheckpoint(b *pgx.Batch, queryID string) {
	b.Queue(`DELETE FROM query_checkpoints WHERE query_id = $1`, queryID)
}
