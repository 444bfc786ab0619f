package capture

import (
	"context"
	"strconv"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/pgsource"
)

// Heartbeats say how fresh the change topics are. A heartbeat record
// {"ts_ms": T} on __debezium-heartbeat.<prefix> (Debezium's topic, key and
// value) is written only once Kafka acknowledged the records of every
// transaction whose commit was acknowledged to its client before T (T on
// this worker's clock): a consumer that read the heartbeat and then its
// change topics up to the end offsets it listed after reading it has seen
// every such transaction. A capture that does not get there (its
// replication connection or Kafka blocked, the stream loop stuck) writes no
// heartbeat, so T stops advancing.
//
// To vouch for T, the capture reads the source's WAL insert position P on
// its side connection right after taking T: a transaction acknowledged to
// its client before T had inserted its commit record before P (a commit is
// acknowledged after its record is inserted, and flushed unless
// synchronous_commit is off). It then waits until the position it
// confirmed, every record up to which Kafka acknowledged, reaches P; on a
// quiet source it asks the server for a keepalive, which carries how far
// the server has sent the slot's changes. T is written, and the next
// probe taken, once P is reached.

// freshProbe is the claim a heartbeat makes, until it can be made.
type freshProbe struct {
	pending bool
	at      time.Time     // T
	lsn     pglogrepl.LSN // P
	asked   time.Time     // when a keepalive was last asked for
}

// keepaliveAskEvery is how often a pending probe asks the server again
// for a keepalive.
const keepaliveAskEvery = 50 * time.Millisecond

// walPageSize is PostgreSQL's WAL page size (XLOG_BLCKSZ, 8 kB unless
// compiled otherwise), and walLongPageHeader the largest page header: an
// insert position just past a page's header is the end of the previous
// page's last record as the walsender reports it.
const (
	walPageSize       = 8192
	walLongPageHeader = 40
)

// freshness takes a probe when a heartbeat is due and writes the
// heartbeat once its position is confirmed.
func (s *streamer) freshness(ctx context.Context, now time.Time) error {
	if s.e.cfg.HeartbeatInterval <= 0 {
		return nil
	}
	p := &s.probe
	if !p.pending {
		if now.Before(s.nextHeartbeat) {
			return nil
		}
		s.nextHeartbeat = now.Add(s.e.cfg.HeartbeatInterval)
		at := time.Now()
		var lsn pglogrepl.LSN
		var text string
		err := s.side.QueryRow(ctx, `SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
			ELSE pg_current_wal_insert_lsn() END)::text`).Scan(&text)
		if err == nil {
			lsn, err = pglogrepl.ParseLSN(text)
		}
		if err != nil {
			return pgsource.Classify("read the source's WAL position", err)
		}
		if off := lsn % walPageSize; off <= walLongPageHeader {
			lsn -= off
		}
		*p = freshProbe{pending: true, at: at, lsn: lsn}
	}
	return s.heartbeatIfConfirmed(ctx, now)
}

// heartbeatIfConfirmed writes the pending probe's heartbeat once every
// record before its position is acknowledged, and otherwise asks the
// server for a keepalive (at most every keepaliveAskEvery).
func (s *streamer) heartbeatIfConfirmed(ctx context.Context, now time.Time) error {
	p := &s.probe
	if !p.pending {
		return nil
	}
	confirmed := s.acks.advance()
	if confirmed >= p.lsn {
		p.pending = false
		return s.heartbeat(ctx, p.at)
	}
	if now.Sub(p.asked) < keepaliveAskEvery {
		return nil
	}
	p.asked = now
	err := pglogrepl.SendStandbyStatusUpdate(ctx, s.repl, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: confirmed, WALFlushPosition: confirmed, WALApplyPosition: confirmed,
		ClientTime: now, ReplyRequested: true,
	})
	if err != nil {
		return pgsource.Classify("ask replication slot "+s.row.SlotName+" for a keepalive", err)
	}
	s.sentConfirmed, s.lastStatus = confirmed, now
	return nil
}

// heartbeat writes Debezium's heartbeat record: key {"serverName":prefix},
// value {"ts_ms":at}.
func (s *streamer) heartbeat(ctx context.Context, at time.Time) error {
	topic := HeartbeatTopicPrefix + s.row.TopicPrefix
	if err := s.prod.ensureTopic(ctx, topic); err != nil {
		return err
	}
	key := strconv.AppendQuote([]byte(`{"serverName":`), s.row.TopicPrefix)
	key = append(key, '}')
	val := strconv.AppendInt([]byte(`{"ts_ms":`), at.UnixMilli(), 10)
	val = append(val, '}')
	s.prod.produceUntracked(ctx, &kgo.Record{Topic: topic, Key: key, Value: val})
	return nil
}
