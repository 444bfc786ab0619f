package capture

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/dbzjson"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/pgsource"
)

// snapshot copies every published table as it was at the slot's consistent
// point, reading in the snapshot the slot exported (the replication
// connection that created it stays open and idle meanwhile). Rows become
// "r" records; a cursor fetches SnapshotChunkRows at a time and the
// producer's buffer bounds what is held in memory. It returns once Kafka
// acknowledged every record, with the descriptions of the tables it
// copied.
func (e *Engine) snapshot(ctx context.Context, src source, snapshotName string, at pglogrepl.LSN,
	row captureRow, facts serverFacts, prod *producer, live *liveStatus) (*jobs.SnapshotProgress, []snapshotDescription, error) {
	conn, err := src.connect(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close(context.Background())
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, nil, pgsource.Classify("begin snapshot transaction", err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SET TRANSACTION SNAPSHOT `+quoteLiteral(snapshotName)); err != nil {
		return nil, nil, pgsource.Classify("set snapshot "+snapshotName, err)
	}
	// The table list is read in the snapshot too, so that it matches what
	// the slot will stream from the consistent point on.
	tables, err := publishedTables(ctx, conn, row.PublicationName)
	if err != nil {
		return nil, nil, err
	}
	var xmin int64
	if err := tx.QueryRow(ctx, `SELECT txid_snapshot_xmin(txid_current_snapshot())`).Scan(&xmin); err != nil {
		return nil, nil, pgsource.Classify("read snapshot transaction id", err)
	}
	progress := jobs.SnapshotProgress{Tables: make([]jobs.TableProgress, len(tables))}
	for i, t := range tables {
		var estimate int64
		if err := tx.QueryRow(ctx, `SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE oid = $1`, t.OID).Scan(&estimate); err != nil {
			return nil, nil, pgsource.Classify("estimate rows of "+t.String(), err)
		}
		progress.Tables[i] = jobs.TableProgress{Schema: t.Schema, Table: t.Name, RowsEstimate: estimate}
		progress.RowsEstimate += estimate
	}
	live.updateSnapshot(func(p *jobs.SnapshotProgress) { *p = progress })

	cat := newCatalog(facts.VersionNum)
	em := &snapshotEmitter{
		ctx: ctx, prod: prod, batch: prod.newBatch(time.Now()),
		src: dbzjson.Source{Version: e.cfg.Version, Name: row.TopicPrefix, DB: facts.Database, TxID: xmin,
			LSN: int64(at), Sequence: dbzjson.Sequence(0, uint64(at))},
	}
	rels := make([]*dbzjson.Relation, len(tables))
	descs := make([]snapshotDescription, len(tables))
	priors := make([]*priorRows, len(tables))
	for i, t := range tables {
		rel, err := cat.tableRelation(ctx, conn, t)
		if err != nil {
			return nil, nil, err
		}
		attnums, err := cat.attnums(ctx, conn, t.OID)
		if err != nil {
			return nil, nil, pgsource.Classify("describe table "+t.String(), err)
		}
		rels[i], descs[i] = rel, snapshotDescription{oid: t.OID, desc: describe(rel, t.Identity, attnums)}
		topic := dbzjson.Topic(row.TopicPrefix, rel)
		if err := prod.ensureTopic(ctx, topic); err != nil {
			return nil, nil, err
		}
		// What the topic holds from before: read before this snapshot
		// writes to it.
		if priors[i], err = readPriorRows(ctx, e.cfg.Kafka, prod.adm, topic); err != nil {
			return nil, nil, err
		}
		em.prior = priors[i]
		n, err := e.copyTable(ctx, conn, tx, t, rel, topic, em, func(copied int64) {
			live.updateSnapshot(func(p *jobs.SnapshotProgress) {
				p.RowsCopied += copied - p.Tables[i].RowsCopied
				p.Tables[i].RowsCopied = copied
			})
		})
		if err != nil {
			return nil, nil, err
		}
		em.endTable()
		live.updateSnapshot(func(p *jobs.SnapshotProgress) {
			p.RowsEstimate += n - p.Tables[i].RowsEstimate
			p.Tables[i].RowsEstimate, p.Tables[i].Done = n, true
		})
		if err := prod.failed(); err != nil {
			return nil, nil, err
		}
	}
	if err := em.finish(); err != nil {
		return nil, nil, err
	}
	for i, prior := range priors {
		n, err := prior.retract(ctx, e.cfg.Kafka, prod, em.batch, em.src, rels[i].Schema, rels[i].Table)
		if err != nil {
			return nil, nil, err
		}
		if n > 0 {
			live.updateSnapshot(func(p *jobs.SnapshotProgress) {
				p.Tables[i].RowsRetracted = n
				p.RowsRetracted += n
			})
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, nil, pgsource.Classify("end snapshot transaction", err)
	}
	if err := prod.cl.Flush(ctx); err != nil {
		return nil, nil, fmt.Errorf("wait for kafka to acknowledge the snapshot: %w", err)
	}
	if err := prod.failed(); err != nil {
		return nil, nil, err
	}
	var out *jobs.SnapshotProgress
	live.updateSnapshot(func(p *jobs.SnapshotProgress) {
		p.Done = true
		c := *p
		c.Tables = append([]jobs.TableProgress(nil), p.Tables...)
		out = &c
	})
	return out, descs, nil
}

// snapshotDescription is a table as the snapshot copied it.
type snapshotDescription struct {
	oid  uint32
	desc TableDescription
}

// copyTable copies one table through a cursor, SnapshotChunkRows at a
// time, in text format.
func (e *Engine) copyTable(ctx context.Context, conn *pgx.Conn, tx pgx.Tx, t candidateTable, rel *dbzjson.Relation,
	topic string, em *snapshotEmitter, progress func(copied int64)) (int64, error) {
	cols := make([]string, len(rel.Columns))
	for i, c := range rel.Columns {
		cols[i] = pgx.Identifier{c.Name}.Sanitize()
	}
	// ONLY: rows of inheritance children are published as the child's.
	if _, err := tx.Exec(ctx, `DECLARE cdcq_snapshot NO SCROLL CURSOR FOR SELECT `+strings.Join(cols, ", ")+` FROM ONLY `+t.ident()); err != nil {
		return 0, pgsource.Classify("read table "+t.String(), err)
	}
	em.startTable(rel, topic)
	fetch := `FETCH ` + strconv.Itoa(e.cfg.SnapshotChunkRows) + ` FROM cdcq_snapshot`
	var copied int64
	for {
		n := 0
		mrr := conn.PgConn().Exec(ctx, fetch)
		for mrr.NextResult() {
			rr := mrr.ResultReader()
			for rr.NextRow() {
				em.add(rowValues(rr.Values()))
				n++
			}
			if _, err := rr.Close(); err != nil {
				mrr.Close()
				return copied, pgsource.Classify("read table "+t.String(), err)
			}
		}
		if err := mrr.Close(); err != nil {
			return copied, pgsource.Classify("read table "+t.String(), err)
		}
		if err := em.err; err != nil {
			return copied, err
		}
		copied += int64(n)
		progress(copied)
		e.hook(ctx, "snapshot-chunk")
		if err := ctx.Err(); err != nil {
			return copied, err
		}
		if n < e.cfg.SnapshotChunkRows {
			break
		}
	}
	if _, err := tx.Exec(ctx, `CLOSE cdcq_snapshot`); err != nil {
		return copied, pgsource.Classify("read table "+t.String(), err)
	}
	return copied, nil
}

// rowValues copies a row's text values (nil: NULL) with three allocations:
// the values, their strings, and one backing string.
func rowValues(raw [][]byte) []dbzjson.Value {
	size := 0
	for _, b := range raw {
		size += len(b)
	}
	var sb strings.Builder
	sb.Grow(size)
	for _, b := range raw {
		sb.Write(b)
	}
	all := sb.String()
	strs := make([]string, len(raw))
	vals := make([]dbzjson.Value, len(raw))
	off := 0
	for i, b := range raw {
		if b == nil {
			continue
		}
		strs[i] = all[off : off+len(b)]
		off += len(b)
		vals[i] = &strs[i]
	}
	return vals
}

// snapshotEmitter produces snapshot records, holding back one row so that
// it can mark the first and last records (of the snapshot and of each
// table) as Debezium does.
type snapshotEmitter struct {
	ctx     context.Context
	prod    *producer
	batch   *batch
	src     dbzjson.Source
	err     error
	emitted int64

	enc        *encoder
	topic      string
	prior      *priorRows
	tableRows  int64
	pending    []dbzjson.Value
	pendingEnc *encoder
	pendingTop string
	pendingPri *priorRows
	pendFirst  bool
	pendLast   bool
}

func (m *snapshotEmitter) startTable(rel *dbzjson.Relation, topic string) {
	m.enc, m.topic, m.tableRows = newEncoder(rel, true), topic, 0
}

func (m *snapshotEmitter) add(row []dbzjson.Value) {
	if m.pending != nil {
		m.emit(false)
	}
	m.pending, m.pendingEnc, m.pendingTop, m.pendingPri = row, m.enc, m.topic, m.prior
	m.pendFirst, m.pendLast = m.tableRows == 0, false
	m.tableRows++
}

func (m *snapshotEmitter) endTable() {
	if m.pending != nil && m.tableRows > 0 {
		m.pendLast = true
	}
}

func (m *snapshotEmitter) finish() error {
	if m.pending != nil {
		m.emit(true)
	}
	return m.err
}

func (m *snapshotEmitter) emit(last bool) {
	if m.err != nil {
		return
	}
	src := m.src
	// The first record emitted is the first table's first; Debezium lets
	// "last" win over "first" for a snapshot of one row.
	first := m.emitted == 0
	src.Snapshot = dbzjson.SnapshotMarker(first, last, first || m.pendFirst, last || m.pendLast)
	now := time.Now()
	src.TsMs, src.TsUs = now.UnixMilli(), now.UnixMicro()
	key, val, err := m.pendingEnc.record(m.pending, dbzjson.OpRead, nil, m.pending, src, now.UnixMilli())
	if err != nil {
		m.err = err
		return
	}
	if m.pendingPri != nil {
		if err := m.pendingPri.forget(key); err != nil {
			m.err = err
			return
		}
	}
	m.prod.produce(m.ctx, &kgo.Record{Topic: m.pendingTop, Key: key, Value: val}, m.batch)
	m.emitted++
	m.pending = nil
}

func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
