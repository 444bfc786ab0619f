package capture

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/dbzjson"
	"github.com/cdcq/cdcq/internal/kafkasec"
)

// A snapshot that starts over (after a crash in the middle of the previous
// one, after the slot was lost, or when a deleted environment is created
// again) finds the change topics already holding rows: those of the
// abandoned snapshot and of earlier streaming. Rows the new snapshot writes
// again are replaced by their new record; rows it does not find were
// deleted while nothing captured the deletes, and would stay on the topic
// for ever. So before a table is copied, the capture reads its topic and
// keeps the keys whose last record is not a delete (priorRows); the copy
// strikes off every key it writes; what is left after the snapshot gets a
// delete record (before = the row's last after image) and a tombstone,
// right after the snapshot's last record and before streaming starts.

// rowKey identifies a record key: a hash of its canonical JSON, so that a
// key written with its fields in another order is the same row.
type rowKey [16]byte

// topicPos is where a record is.
type topicPos struct {
	partition int32
	offset    int64
}

// priorRows are the rows one change topic held before a snapshot.
type priorRows struct {
	topic string
	live  map[rowKey]topicPos
	// ends are the partitions' end offsets when the topic was read: the
	// records of the new snapshot come after them.
	ends map[int32]int64
}

// canonicalKey hashes a record key: its JSON with object fields sorted and
// numbers kept as written.
func canonicalKey(key []byte) (rowKey, error) {
	if bytes.IndexByte(key, ',') < 0 && bytes.IndexByte(key, ' ') < 0 && bytes.IndexByte(key, '\\') < 0 {
		// One field and nothing to normalise (the common key of one
		// column): the bytes are the canonical form.
		sum := sha256.Sum256(key)
		return rowKey(sum[:16]), nil
	}
	d := json.NewDecoder(bytes.NewReader(key))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return rowKey{}, fmt.Errorf("record key %q is not JSON: %w", key, err)
	}
	// Marshal sorts object fields; HTML characters stay as they are, as
	// in the fast path above.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return rowKey{}, err
	}
	sum := sha256.Sum256(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	return rowKey(sum[:16]), nil
}

// recordOp returns a Debezium envelope's op ("c", "u", "d", "r", "t"). The
// envelope ends with transaction, op and the ts fields, after the row
// images, so the last "op" field is the envelope's own even when a column
// is called op.
func recordOp(value []byte) string {
	if i := bytes.LastIndex(value, []byte(`"op":"`)); i >= 0 && i+7 <= len(value) && value[i+7] == '"' {
		return string(value[i+6 : i+7])
	}
	var env struct {
		Op string `json:"op"`
	}
	if json.Unmarshal(value, &env) != nil {
		return ""
	}
	return env.Op
}

// readPriorRows reads topic from its start to its current end. A topic
// that does not exist holds no rows.
func readPriorRows(ctx context.Context, kafka kafkasec.Cluster, adm *kadm.Client, topic string) (*priorRows, error) {
	p := &priorRows{topic: topic, live: map[rowKey]topicPos{}, ends: map[int32]int64{}}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("read what topic %s holds: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("read what topic %s holds: %w", topic, err)
	}
	from := map[int32]kgo.Offset{}
	var listErr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			if !errors.Is(o.Err, kerr.UnknownTopicOrPartition) && listErr == nil {
				listErr = o.Err
			}
			return
		}
		p.ends[o.Partition] = o.Offset
		start, ok := starts.Lookup(topic, o.Partition)
		if ok && start.Err == nil && start.Offset < o.Offset {
			from[o.Partition] = kgo.NewOffset().At(start.Offset)
		}
	})
	if listErr != nil {
		return nil, fmt.Errorf("read what topic %s holds: %w", topic, listErr)
	}
	if len(from) == 0 {
		return p, nil
	}
	err = readRange(ctx, kafka, topic, from, p.ends, func(r *kgo.Record) error {
		pos := topicPos{r.Partition, r.Offset}
		if r.Key == nil {
			if r.Value != nil && recordOp(r.Value) == "t" {
				// A truncate ends every row before it (in its partition).
				for k, at := range p.live {
					if at.partition == r.Partition {
						delete(p.live, k)
					}
				}
			}
			return nil // no key: a table without a primary key, or a truncate
		}
		k, err := canonicalKey(r.Key)
		if err != nil {
			return fmt.Errorf("%s partition %d offset %d: %w", topic, r.Partition, r.Offset, err)
		}
		if r.Value == nil || recordOp(r.Value) == "d" {
			delete(p.live, k)
		} else {
			p.live[k] = pos
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// readRange consumes topic's partitions from the offsets in from up to
// (not including) the offsets in until, in order within each partition.
func readRange(ctx context.Context, kafka kafkasec.Cluster, topic string, from map[int32]kgo.Offset, until map[int32]int64, fn func(*kgo.Record) error) error {
	cl, err := kafka.NewClient(kgo.ClientID("cdcq-capture"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}))
	if err != nil {
		return err
	}
	defer cl.Close()
	open := len(from)
	done := map[int32]bool{}
	for open > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("read %s partition %d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		var cbErr error
		fetches.EachRecord(func(r *kgo.Record) {
			if cbErr != nil || done[r.Partition] || r.Offset >= until[r.Partition] {
				return
			}
			cbErr = fn(r)
			if r.Offset+1 >= until[r.Partition] {
				done[r.Partition] = true
				open--
			}
		})
		if cbErr != nil {
			return cbErr
		}
	}
	return nil
}

// forget strikes off a key the new snapshot wrote.
func (p *priorRows) forget(key []byte) error {
	if len(p.live) == 0 || key == nil {
		return nil
	}
	k, err := canonicalKey(key)
	if err != nil {
		return err
	}
	delete(p.live, k)
	return nil
}

// retract produces, for every row still held (the new snapshot did not
// find it), a delete whose before image is the row's last after image,
// followed by a tombstone, as part of b. It returns how many rows it
// retracted.
func (p *priorRows) retract(ctx context.Context, kafka kafkasec.Cluster, prod *producer, b *batch, src dbzjson.Source, schema, table string) (int64, error) {
	if len(p.live) == 0 {
		return 0, nil
	}
	wanted := make(map[topicPos]bool, len(p.live))
	first := map[int32]int64{}
	until := map[int32]int64{}
	for _, at := range p.live {
		wanted[at] = true
		if o, ok := first[at.partition]; !ok || at.offset < o {
			first[at.partition] = at.offset
		}
		until[at.partition] = max(until[at.partition], at.offset+1)
	}
	from := map[int32]kgo.Offset{}
	for part, o := range first {
		from[part] = kgo.NewOffset().At(o)
	}
	src.Schema, src.Table, src.Snapshot = schema, table, "false"
	var n int64
	err := readRange(ctx, kafka, p.topic, from, until, func(r *kgo.Record) error {
		if !wanted[topicPos{r.Partition, r.Offset}] {
			return nil
		}
		var env struct {
			After json.RawMessage `json:"after"`
		}
		if err := json.Unmarshal(r.Value, &env); err != nil {
			return fmt.Errorf("%s partition %d offset %d: %w", p.topic, r.Partition, r.Offset, err)
		}
		now := time.Now()
		src.TsMs, src.TsUs = now.UnixMilli(), now.UnixMicro()
		val, err := dbzjson.DeleteEnvelopeRaw(env.After, src, now.UnixMilli())
		if err != nil {
			return fmt.Errorf("%s partition %d offset %d: %w", p.topic, r.Partition, r.Offset, err)
		}
		prod.produce(ctx, &kgo.Record{Topic: p.topic, Key: r.Key, Value: val}, b)
		prod.produce(ctx, &kgo.Record{Topic: p.topic, Key: r.Key}, b)
		n++
		return nil
	})
	return n, err
}
