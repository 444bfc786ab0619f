package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/dbzjson"
	"github.com/cdcq/cdcq/internal/pgsource"
	"github.com/cdcq/cdcq/internal/stagetrace"
)

// wakeInterval is how often the stream loop stops reading to confirm
// positions, send heartbeats and check for cancellation.
const wakeInterval = 100 * time.Millisecond

// forcedStatusInterval: a status update goes out at least this often, so
// that the server does not time the connection out.
const forcedStatusInterval = 10 * time.Second

// relState is a relation the stream announced.
type relState struct {
	rel   *dbzjson.Relation
	enc   *encoder
	topic string
	keys  []int // indexes of the primary-key columns
	// described is the relation's description until the change after the
	// Relation message gives it a position and it is recorded.
	described *TableDescription
	// changed marks the next record: the first after a change of the
	// table's description (SchemaChangeHeader).
	changed bool
}

// SchemaChangeHeader is the header of the first record of a table after
// its description changed (a column added, dropped, renamed or retyped,
// the primary key or the replica identity changed, the table renamed): its
// value is the commit time of the record's transaction (RFC 3339, the
// source database's clock). A consumer that must not apply records of a
// description it has not checked (cdcq's embedded engine) stops there
// until a check of the source's catalog made after that time tells
// whether the change breaks it. Other consumers ignore it.
const SchemaChangeHeader = "cdcq.schema-change"

// streamer reads the slot from its confirmed position and produces a
// record for each change. One goroutine does everything: the replication
// connection is not safe for concurrent use, and producing is asynchronous.
type streamer struct {
	e     *Engine
	row   captureRow
	db    string
	facts serverFacts
	repl  *pgconn.PgConn
	side  *pgx.Conn
	cat   *catalog
	prod  *producer
	live  *liveStatus
	log   *slog.Logger

	relations map[uint32]*relState
	// relLog records the changes of the tables' descriptions.
	relLog *relationLog
	acks   ackQueue
	// cur is the open transaction's batch; nil between transactions.
	cur        *batch
	xid        uint32
	commitTime time.Time
	// lastCommit is the end LSN of the previous transaction, for
	// source.sequence (unknown, and written as null, after a restart).
	lastCommit pglogrepl.LSN
	// origin and originLSN are the open transaction's replication origin
	// (pgoutput's Origin message), for source.origin and origin_lsn.
	origin    string
	originLSN pglogrepl.LSN

	sentConfirmed pglogrepl.LSN
	lastStatus    time.Time
	nextHeartbeat time.Time
	// probe is the heartbeat waiting for its position (freshness.go).
	probe freshProbe
}

func (s *streamer) run(ctx context.Context) error {
	slot, err := readSlot(ctx, s.side, s.row.SlotName)
	if err != nil {
		return err
	}
	if !slot.exists {
		return fmt.Errorf("replication slot %s disappeared", s.row.SlotName)
	}
	s.relations = map[uint32]*relState{}
	s.acks.confirmed, s.acks.last, s.sentConfirmed = slot.confirmed, slot.confirmed, slot.confirmed
	s.live.acked.Store(uint64(slot.confirmed))
	args := []string{"proto_version '1'", "publication_names " + quoteLiteral(s.row.PublicationName)}
	err = pglogrepl.StartReplication(ctx, s.repl, s.row.SlotName, 0,
		pglogrepl.StartReplicationOptions{Mode: pglogrepl.LogicalReplication, PluginArgs: args})
	if err != nil {
		return pgsource.Classify("start replication from slot "+s.row.SlotName, err)
	}
	s.log.Info("embedded capture: streaming", "slot", s.row.SlotName, "from", slot.confirmed)
	now := time.Now()
	s.lastStatus = now
	s.nextHeartbeat = now
	nc := s.repl.Conn()
	defer nc.SetReadDeadline(time.Time{})
	var nextWake time.Time
	for {
		if now := time.Now(); !now.Before(nextWake) {
			if err := ctx.Err(); err != nil {
				s.stop()
				return err
			}
			if err := s.prod.failed(); err != nil {
				return err
			}
			if err := s.periodic(ctx, now, false); err != nil {
				return err
			}
			nextWake = now.Add(wakeInterval)
			if err := nc.SetReadDeadline(nextWake); err != nil {
				return fmt.Errorf("replication connection: %w", err)
			}
		}
		msg, err := s.repl.ReceiveMessage(context.Background())
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return pgsource.Classify("receive from replication slot "+s.row.SlotName, err)
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if err := s.copyData(ctx, m.Data); err != nil {
				return err
			}
		case *pgproto3.ErrorResponse:
			return pgsource.Classify("replication slot "+s.row.SlotName, pgconn.ErrorResponseToPgError(m))
		case *pgproto3.CopyDone:
			return fmt.Errorf("the server ended replication from slot %s", s.row.SlotName)
		}
	}
}

func (s *streamer) copyData(ctx context.Context, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		k, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return fmt.Errorf("parse keepalive: %w", err)
		}
		// Between transactions, the server's position says that every
		// transaction that committed before it was sent: once those are
		// acknowledged it may be confirmed, which moves the slot past WAL
		// that carries no captured change.
		if s.cur == nil && k.ServerWALEnd > s.acks.last {
			b := s.prod.newBatch(time.Time{})
			b.end = k.ServerWALEnd
			s.acks.push(b)
		}
		if k.ReplyRequested {
			return s.periodic(ctx, time.Now(), true)
		}
		if s.cur == nil {
			// Likely the keepalive a pending heartbeat asked for.
			return s.heartbeatIfConfirmed(ctx, time.Now())
		}
	case pglogrepl.XLogDataByteID:
		x, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return fmt.Errorf("parse WAL data: %w", err)
		}
		m, err := pglogrepl.Parse(x.WALData)
		if err != nil {
			return fmt.Errorf("parse pgoutput message at %s: %w", x.WALStart, err)
		}
		return s.message(ctx, x.WALStart, m)
	}
	return nil
}

// stop, on shutdown, waits briefly for Kafka to acknowledge what is in
// flight and confirms it, so that the worker taking over replays less.
func (s *streamer) stop() {
	if s.e.cfg.crashOnStop {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.prod.cl.Flush(ctx)
	confirmed := s.acks.advance()
	if confirmed != s.sentConfirmed {
		_ = pglogrepl.SendStandbyStatusUpdate(ctx, s.repl, pglogrepl.StandbyStatusUpdate{
			WALWritePosition: confirmed, WALFlushPosition: confirmed, WALApplyPosition: confirmed,
		})
	}
}

// periodic confirms what Kafka acknowledged, updates the lag and writes a
// heartbeat when one is due.
func (s *streamer) periodic(ctx context.Context, now time.Time, reply bool) error {
	confirmed := s.acks.advance()
	s.live.acked.Store(uint64(confirmed))
	oldest, ok := s.acks.oldest()
	if !ok && s.cur != nil {
		oldest, ok = s.commitTime, true
	}
	if ok {
		s.live.oldestUnacked.Store(oldest.UnixNano())
	} else {
		s.live.oldestUnacked.Store(0)
	}
	sinceStatus := now.Sub(s.lastStatus)
	if reply || sinceStatus >= forcedStatusInterval || (confirmed != s.sentConfirmed && sinceStatus >= s.e.cfg.StatusInterval) {
		err := pglogrepl.SendStandbyStatusUpdate(ctx, s.repl, pglogrepl.StandbyStatusUpdate{
			WALWritePosition: confirmed, WALFlushPosition: confirmed, WALApplyPosition: confirmed, ClientTime: now,
		})
		if err != nil {
			return pgsource.Classify("confirm position to replication slot "+s.row.SlotName, err)
		}
		s.sentConfirmed, s.lastStatus = confirmed, now
	}
	// Heartbeats say how fresh the topics are (freshness.go).
	return s.freshness(ctx, now)
}

func (s *streamer) message(ctx context.Context, lsn pglogrepl.LSN, msg pglogrepl.Message) error {
	switch m := msg.(type) {
	case *pglogrepl.BeginMessage:
		s.cur = s.prod.newBatch(m.CommitTime)
		s.xid, s.commitTime = m.Xid, m.CommitTime
		s.origin, s.originLSN = "", 0
	case *pglogrepl.OriginMessage:
		// Sent after Begin for a transaction that another server
		// replicated into the source with a replication origin.
		s.origin, s.originLSN = m.Name, m.CommitLSN
	case *pglogrepl.CommitMessage:
		if s.cur == nil {
			return fmt.Errorf("commit at %s without a transaction", lsn)
		}
		if stagetrace.On() {
			stagetrace.Mark("capture-decoded", s.commitTime, time.Now())
		}
		s.cur.end = m.TransactionEndLSN
		s.acks.push(s.cur)
		s.cur = nil
		// Debezium's last committed LSN is the position of the Commit
		// message, which is the transaction's end.
		s.lastCommit = m.TransactionEndLSN
	case *pglogrepl.RelationMessage:
		// Sent before the table's first change in this session and before
		// its first change after a DDL (or anything else that made the
		// server describe it again): the records from here on follow this
		// description.
		rel, err := s.cat.streamRelation(ctx, s.side, m)
		if err != nil {
			return pgsource.Classify("describe table", err)
		}
		attnums, err := s.cat.attnums(ctx, s.side, m.RelationID)
		if err != nil {
			return pgsource.Classify("describe table", err)
		}
		desc := describe(rel, m.ReplicaIdentity, attnums)
		rs := &relState{rel: rel, enc: newEncoder(rel, false), topic: dbzjson.Topic(s.row.TopicPrefix, rel), described: &desc}
		for i, c := range rel.Columns {
			if c.Key {
				rs.keys = append(rs.keys, i)
			}
		}
		if err := s.prod.ensureTopic(ctx, rs.topic); err != nil {
			return err
		}
		s.relations[m.RelationID] = rs
	case *pglogrepl.InsertMessage:
		rs, err := s.relation(ctx, m.RelationID, lsn)
		if err != nil {
			return err
		}
		return s.emit(ctx, rs, dbzjson.OpCreate, nil, tupleValues(m.Tuple, nil), lsn)
	case *pglogrepl.UpdateMessage:
		rs, err := s.relation(ctx, m.RelationID, lsn)
		if err != nil {
			return err
		}
		var old []dbzjson.Value
		if m.OldTuple != nil {
			old = tupleValues(m.OldTuple, nil)
		}
		var full []dbzjson.Value
		if m.OldTupleType == pglogrepl.UpdateMessageTupleTypeOld {
			full = old
		}
		after := tupleValues(m.NewTuple, full)
		if old != nil && keyChanged(rs, old, after) {
			// Debezium turns a primary-key change into a delete of the old
			// key, its tombstone, and a create of the new one.
			if err := s.emit(ctx, rs, dbzjson.OpDelete, old, nil, lsn); err != nil {
				return err
			}
			return s.emit(ctx, rs, dbzjson.OpCreate, nil, after, lsn)
		}
		return s.emit(ctx, rs, dbzjson.OpUpdate, full, after, lsn)
	case *pglogrepl.DeleteMessage:
		rs, err := s.relation(ctx, m.RelationID, lsn)
		if err != nil {
			return err
		}
		if m.OldTuple == nil {
			return fmt.Errorf("delete at %s from %s.%s carries no old tuple", lsn, rs.rel.Schema, rs.rel.Table)
		}
		return s.emit(ctx, rs, dbzjson.OpDelete, tupleValues(m.OldTuple, nil), nil, lsn)
	case *pglogrepl.TruncateMessage:
		for _, id := range m.RelationIDs {
			rs, err := s.relation(ctx, id, lsn)
			if err != nil {
				return err
			}
			now := time.Now()
			val, err := dbzjson.TruncateEnvelope(s.source(rs, lsn), now.UnixMilli())
			if err != nil {
				return fmt.Errorf("encode truncate of %s.%s: %w", rs.rel.Schema, rs.rel.Table, err)
			}
			if err := s.inTxn(lsn); err != nil {
				return err
			}
			s.prod.produce(ctx, s.record(rs, nil, val), s.cur)
		}
	}
	return nil
}

// relation returns the state of the relation a change at lsn belongs to,
// and records the relation's description at lsn when the change is the
// first after its Relation message: the server sends Relation messages
// without a position of their own (0).
func (s *streamer) relation(ctx context.Context, id uint32, lsn pglogrepl.LSN) (*relState, error) {
	rs, ok := s.relations[id]
	if !ok {
		return nil, fmt.Errorf("change to relation %d before its description", id)
	}
	if rs.described != nil {
		changed, err := s.relLog.observe(ctx, id, lsn, *rs.described)
		if err != nil {
			return nil, err
		}
		rs.described, rs.changed = nil, changed
	}
	return rs, nil
}

// record is a record of rs, marked when it is the first after a change of
// the table's description.
func (s *streamer) record(rs *relState, key, value []byte) *kgo.Record {
	r := &kgo.Record{Topic: rs.topic, Key: key, Value: value}
	if rs.changed {
		rs.changed = false
		r.Headers = []kgo.RecordHeader{{Key: SchemaChangeHeader, Value: []byte(s.commitTime.UTC().Format(time.RFC3339Nano))}}
	}
	return r
}

func (s *streamer) inTxn(lsn pglogrepl.LSN) error {
	if s.cur == nil {
		return fmt.Errorf("change at %s outside a transaction", lsn)
	}
	return nil
}

func (s *streamer) source(rs *relState, lsn pglogrepl.LSN) dbzjson.Source {
	return dbzjson.Source{
		Version: s.e.cfg.Version, Name: s.row.TopicPrefix,
		TsMs: s.commitTime.UnixMilli(), TsUs: s.commitTime.UnixMicro(),
		Snapshot: "false", DB: s.db, Schema: rs.rel.Schema, Table: rs.rel.Table,
		TxID: int64(s.xid), LSN: int64(lsn), Sequence: dbzjson.Sequence(uint64(s.lastCommit), uint64(lsn)),
		Origin: s.origin, OriginLSN: int64(s.originLSN),
	}
}

// emit produces one change, and a tombstone after a delete.
func (s *streamer) emit(ctx context.Context, rs *relState, op dbzjson.Op, before, after []dbzjson.Value, lsn pglogrepl.LSN) error {
	if err := s.inTxn(lsn); err != nil {
		return err
	}
	row := after
	if op == dbzjson.OpDelete {
		row = before
	}
	key, val, err := rs.enc.record(row, op, before, after, s.source(rs, lsn), time.Now().UnixMilli())
	if err != nil {
		return err
	}
	s.prod.produce(ctx, s.record(rs, key, val), s.cur)
	if op == dbzjson.OpDelete {
		// The tombstone lets a compacted topic forget the key. Debezium
		// writes one for a table without a primary key too, with a null
		// key (which a compacted topic would refuse).
		s.prod.produce(ctx, &kgo.Record{Topic: rs.topic, Key: key}, s.cur)
	}
	return nil
}

// tupleValues turns a pgoutput tuple into text values. An unchanged TOASTed
// value ('u') is taken from old when that is a full old row (REPLICA
// IDENTITY FULL), and is dbzjson.Unchanged otherwise.
func tupleValues(t *pglogrepl.TupleData, old []dbzjson.Value) []dbzjson.Value {
	if t == nil {
		return nil
	}
	size := 0
	for _, c := range t.Columns {
		if c.DataType == pglogrepl.TupleDataTypeText || c.DataType == pglogrepl.TupleDataTypeBinary {
			size += len(c.Data)
		}
	}
	buf := make([]byte, 0, size)
	for _, c := range t.Columns {
		if c.DataType == pglogrepl.TupleDataTypeText || c.DataType == pglogrepl.TupleDataTypeBinary {
			buf = append(buf, c.Data...)
		}
	}
	all := string(buf)
	strs := make([]string, len(t.Columns))
	vals := make([]dbzjson.Value, len(t.Columns))
	off := 0
	for i, c := range t.Columns {
		switch c.DataType {
		case pglogrepl.TupleDataTypeText, pglogrepl.TupleDataTypeBinary:
			strs[i] = all[off : off+len(c.Data)]
			off += len(c.Data)
			vals[i] = &strs[i]
		case pglogrepl.TupleDataTypeToast:
			if i < len(old) && old[i] != nil && old[i] != dbzjson.Unchanged {
				vals[i] = old[i]
			} else {
				vals[i] = dbzjson.Unchanged
			}
		}
	}
	return vals
}

// keyChanged reports whether an update changed the primary key. It needs
// the old key values: under REPLICA IDENTITY USING INDEX the old tuple may
// not have them, and the update is then taken as keeping its key.
func keyChanged(rs *relState, old, after []dbzjson.Value) bool {
	for _, i := range rs.keys {
		if i >= len(old) || i >= len(after) || old[i] == nil || after[i] == nil || old[i] == dbzjson.Unchanged {
			return false
		}
	}
	for _, i := range rs.keys {
		if *old[i] != *after[i] {
			return true
		}
	}
	return false
}
