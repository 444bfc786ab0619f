package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cdcq/cdcq/internal/dbzjson"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/leader"
)

// Schema changes. pgoutput describes a table with a Relation message
// before the table's first change in a session, and again before its first
// change after anything invalidated the table's cache entry in the server:
// every DDL on it, and catalog updates that leave the description as it
// was (around a DDL the capture sees several, most of them the same
// description again). The capture compares each description with the
// table's previous one and records a difference as a relation change: in
// its log at Info, in capture_schema_changes (migrations/
// 00700_capture_schema_changes.sql), and, the last few, in the status
// (jobs.CaptureStatus.SchemaChanges). The records from the change's
// position on are encoded with the new description.
//
// The names, types and replica identity are the Relation message's, as of
// the change it came with. The primary key and the columns' attribute
// numbers are read from the catalog when the message arrives, as Debezium
// reads the key: a capture that is behind a DDL that changed the primary
// key encodes the changes just before it with the new key already, and
// records the change at the first of them.
//
// The previous description is the one this session read last or, for the
// first description of a table after a restart, the one capture_relations
// kept, so that a DDL done while the capture was down is recorded too
// (with the position of the table's first change after it). The snapshot
// records the descriptions it copied tables with, at its position. The
// first description of a table the capture never saw is no change.
//
// A DDL shows in the stream only with the table's next change: a table
// that is altered and never written again has no relation change, and a
// dropped table none at all (pgoutput says nothing about it).

// statusSchemaChanges is how many relation changes the status shows.
const statusSchemaChanges = 20

// TableDescription is a captured table as the capture describes it: what
// pgoutput's Relation message says (names, column types, replica
// identity), with the primary key and the columns' attribute numbers read
// from the source's catalog.
type TableDescription struct {
	Schema string `json:"schema"`
	Table  string `json:"table"`
	// ReplicaIdentity is default, nothing, full or index.
	ReplicaIdentity string              `json:"replicaIdentity"`
	Columns         []ColumnDescription `json:"columns"`
	// Key names the primary key's columns in key order; empty when the
	// table has none (its records have null keys).
	Key []string `json:"key,omitempty"`
}

// ColumnDescription is one column of a TableDescription.
type ColumnDescription struct {
	Name string `json:"name"`
	// Type is the type as format_type writes it, such as numeric(12,2).
	Type    string `json:"type"`
	TypeOID uint32 `json:"typeOid"`
	TypeMod int32  `json:"typeMod"`
	// Attnum is pg_attribute.attnum as the catalog had it when the capture
	// read the description, 0 when the catalog no longer had a column of
	// that name. A renamed column keeps its number; a column dropped and
	// added again gets a new one.
	Attnum int16 `json:"attnum,omitempty"`
}

// QualifiedName is schema.table.
func (d TableDescription) QualifiedName() string { return d.Schema + "." + d.Table }

// DiffKind names a kind of RelationDiff.
type DiffKind string

// The kinds of RelationDiff.
const (
	// DiffTableMoved: Old and New are the schema names.
	DiffTableMoved DiffKind = "table_moved"
	// DiffTableRenamed: Old and New are the table names.
	DiffTableRenamed DiffKind = "table_renamed"
	// DiffColumnAdded: New is the column's type.
	DiffColumnAdded DiffKind = "column_added"
	// DiffColumnDropped: Old is the column's type.
	DiffColumnDropped DiffKind = "column_dropped"
	// DiffColumnRenamed: Old and New are the column's names.
	DiffColumnRenamed DiffKind = "column_renamed"
	// DiffColumnType: Old and New are the types.
	DiffColumnType DiffKind = "column_type"
	// DiffReplicaIdentity: Old and New are default, nothing, full or index.
	DiffReplicaIdentity DiffKind = "replica_identity"
	// DiffPrimaryKey: Old and New are the key's columns, "(a, b)", or
	// "none".
	DiffPrimaryKey DiffKind = "primary_key"
)

// RelationDiff is one difference between two descriptions of a table.
type RelationDiff struct {
	Kind DiffKind `json:"kind"`
	// Column is the column's name after the change (a dropped column's
	// before it); empty for a difference of the whole table.
	Column string `json:"column,omitempty"`
	Old    string `json:"old,omitempty"`
	New    string `json:"new,omitempty"`
}

// String says what changed in words: "column region renamed to area".
func (d RelationDiff) String() string {
	switch d.Kind {
	case DiffTableMoved:
		return "table moved from schema " + d.Old + " to " + d.New
	case DiffTableRenamed:
		return "table " + d.Old + " renamed to " + d.New
	case DiffColumnAdded:
		return "column " + d.Column + " added (" + d.New + ")"
	case DiffColumnDropped:
		return "column " + d.Column + " dropped"
	case DiffColumnRenamed:
		return "column " + d.Old + " renamed to " + d.New
	case DiffColumnType:
		return "column " + d.Column + " type " + d.Old + " -> " + d.New
	case DiffReplicaIdentity:
		return "replica identity " + d.Old + " -> " + d.New
	case DiffPrimaryKey:
		return "primary key " + d.Old + " -> " + d.New
	}
	return string(d.Kind) + " " + d.Column + " " + d.Old + " -> " + d.New
}

// RelationChange is a change of a captured table's description that the
// capture saw. LSN is the position of the table's first change after the
// DDL, which pgoutput sent the new description with: records at positions
// from LSN on carry the new description, records before it the old one.
type RelationChange struct {
	EnvironmentID string
	// RelationOID is the table's pg_class.oid in the source database.
	RelationOID uint32
	LSN         pglogrepl.LSN
	Old, New    TableDescription
	// Diffs are the differences, in the order Description says them.
	Diffs []RelationDiff
	// At is when the capture saw the change.
	At time.Time
}

// Description says what changed in words, the differences separated by
// "; ".
func (c RelationChange) Description() string { return describeDiffs(c.Diffs) }

func describeDiffs(diffs []RelationDiff) string {
	parts := make([]string, len(diffs))
	for i, d := range diffs {
		parts[i] = d.String()
	}
	return strings.Join(parts, "; ")
}

// RelationChanges lists the relation changes the environment's capture
// recorded at positions after since (0 lists all of them), oldest first.
// A record whose source.lsn is below a change's LSN was encoded with the
// description before it. The list starts over when the environment is
// deleted.
func (e *Engine) RelationChanges(ctx context.Context, environmentID string, since pglogrepl.LSN) ([]RelationChange, error) {
	return ListRelationChanges(ctx, e.cfg.Pool, environmentID, since)
}

// ListRelationChanges is Engine.RelationChanges for code that has the
// job-state database but no Engine.
func ListRelationChanges(ctx context.Context, pool *pgxpool.Pool, environmentID string, since pglogrepl.LSN) ([]RelationChange, error) {
	rows, err := pool.Query(ctx, `
		SELECT `+changeColumns+` FROM capture_schema_changes
		WHERE environment_id = $1 AND lsn > $2 ORDER BY lsn, id`, environmentID, int64(since))
	if err != nil {
		return nil, fmt.Errorf("list relation changes of %s: %w", environmentID, err)
	}
	out, err := pgx.CollectRows(rows, scanChange)
	if err != nil {
		return nil, fmt.Errorf("list relation changes of %s: %w", environmentID, err)
	}
	return out, nil
}

const changeColumns = `environment_id, relation_oid, lsn, changes, old_description, new_description, changed_at`

func scanChange(r pgx.CollectableRow) (RelationChange, error) {
	var c RelationChange
	var oid, lsn int64
	var diffs, old, cur []byte
	if err := r.Scan(&c.EnvironmentID, &oid, &lsn, &diffs, &old, &cur, &c.At); err != nil {
		return c, err
	}
	c.RelationOID, c.LSN, c.At = uint32(oid), pglogrepl.LSN(lsn), c.At.UTC()
	if err := json.Unmarshal(diffs, &c.Diffs); err != nil {
		return c, fmt.Errorf("changes at %s: %w", c.LSN, err)
	}
	if err := json.Unmarshal(old, &c.Old); err != nil {
		return c, fmt.Errorf("description before %s: %w", c.LSN, err)
	}
	if err := json.Unmarshal(cur, &c.New); err != nil {
		return c, fmt.Errorf("description at %s: %w", c.LSN, err)
	}
	return c, nil
}

// recentSchemaChanges reads the environment's last relation changes for
// its status, newest first.
func (s *store) recentSchemaChanges(ctx context.Context, environmentID string) ([]jobs.SchemaChange, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT lsn, old_schema, old_table, new_schema, new_table, description, changed_at
		FROM capture_schema_changes WHERE environment_id = $1
		ORDER BY lsn DESC, id DESC LIMIT $2`, environmentID, statusSchemaChanges)
	if err != nil {
		return nil, fmt.Errorf("read relation changes of %s: %w", environmentID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (jobs.SchemaChange, error) {
		var c jobs.SchemaChange
		var oldSchema, oldTable, newSchema, newTable string
		err := r.Scan(&c.LSN, &oldSchema, &oldTable, &newSchema, &newTable, &c.Change, &c.At)
		c.Table, c.At = newSchema+"."+newTable, c.At.UTC()
		if oldSchema != newSchema || oldTable != newTable {
			c.OldTable = oldSchema + "." + oldTable
		}
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("read relation changes of %s: %w", environmentID, err)
	}
	return out, nil
}

// storedDescription is a row of capture_relations.
type storedDescription struct {
	lsn  pglogrepl.LSN
	desc TableDescription
}

// loadDescriptions reads the last description the environment's capture
// kept of each table.
func (s *store) loadDescriptions(ctx context.Context, environmentID string) (map[uint32]storedDescription, error) {
	rows, err := s.pool.Query(ctx, `SELECT relation_oid, lsn, description FROM capture_relations WHERE environment_id = $1`, environmentID)
	if err != nil {
		return nil, fmt.Errorf("read table descriptions of %s: %w", environmentID, err)
	}
	out := map[uint32]storedDescription{}
	var oid, lsn int64
	var desc []byte
	_, err = pgx.ForEachRow(rows, []any{&oid, &lsn, &desc}, func() error {
		var d storedDescription
		if err := json.Unmarshal(desc, &d.desc); err != nil {
			return fmt.Errorf("description of relation %d: %w", oid, err)
		}
		d.lsn = pglogrepl.LSN(lsn)
		out[uint32(oid)] = d
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read table descriptions of %s: %w", environmentID, err)
	}
	return out, nil
}

// saveDescription keeps desc as the table's last description, and with
// change (when not nil) records the change that led to it. It writes
// nothing for a capture that was deleted: the row lock it takes on
// embedded_captures makes markDeleted wait for it, so that what it wrote
// is cleared. inserted is false when the change was recorded before (WAL
// replayed after a restart).
func (s *store) saveDescription(ctx context.Context, environmentID string, oid uint32, lsn pglogrepl.LSN, desc TableDescription, change *RelationChange) (inserted bool, err error) {
	descJSON, err := json.Marshal(desc)
	if err != nil {
		return false, err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// A capture that lost its lease records nothing more.
		if err := leader.CheckFence(ctx, tx); err != nil {
			return err
		}
		var deleted bool
		err := tx.QueryRow(ctx, `SELECT deleted FROM embedded_captures WHERE environment_id = $1 FOR SHARE`, environmentID).Scan(&deleted)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && deleted) {
			return nil
		}
		if err != nil {
			return err
		}
		if change != nil {
			diffs, err := json.Marshal(change.Diffs)
			if err != nil {
				return err
			}
			old, err := json.Marshal(change.Old)
			if err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, `
				INSERT INTO capture_schema_changes (environment_id, relation_oid, lsn, old_schema, old_table,
					new_schema, new_table, description, changes, old_description, new_description, changed_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
				ON CONFLICT (environment_id, relation_oid, lsn) DO NOTHING`,
				environmentID, int64(oid), int64(lsn), change.Old.Schema, change.Old.Table, desc.Schema, desc.Table,
				change.Description(), diffs, old, descJSON, change.At)
			if err != nil {
				return err
			}
			inserted = tag.RowsAffected() > 0
		}
		// A description read from replayed WAL does not replace a later
		// one.
		_, err = tx.Exec(ctx, `
			INSERT INTO capture_relations AS r (environment_id, relation_oid, lsn, description)
			VALUES ($1, $2, $3, $4)
			ON CONFLICT (environment_id, relation_oid) DO UPDATE
				SET lsn = EXCLUDED.lsn, description = EXCLUDED.description, updated_at = now()
				WHERE r.lsn <= EXCLUDED.lsn`,
			environmentID, int64(oid), int64(lsn), descJSON)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("record description of %s.%s in embedded capture %s: %w", desc.Schema, desc.Table, environmentID, err)
	}
	return inserted, nil
}

// forgetDescriptions clears what a deleted capture knew about its tables
// and the changes it recorded: an environment created again starts over.
func (s *store) forgetDescriptions(ctx context.Context, environmentID string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM capture_relations WHERE environment_id = $1`, environmentID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM capture_schema_changes WHERE environment_id = $1`, environmentID)
		return err
	})
	if err != nil {
		return fmt.Errorf("clear table descriptions of embedded capture %s: %w", environmentID, err)
	}
	return nil
}

// relationLog compares each description of a table with the previous one
// and records the differences. One belongs to a stream (or a snapshot) and
// is used by its goroutine only.
type relationLog struct {
	store         *store
	environmentID string
	log           *slog.Logger
	// stored is capture_relations as it was when the log was first used.
	stored map[uint32]storedDescription
	// seen is the last description of each table this session read.
	seen map[uint32]TableDescription
}

func newRelationLog(s *store, environmentID string, log *slog.Logger) *relationLog {
	return &relationLog{store: s, environmentID: environmentID, log: log, seen: map[uint32]TableDescription{}}
}

// observe takes the description of table oid read at lsn.
func (l *relationLog) observe(ctx context.Context, oid uint32, lsn pglogrepl.LSN, desc TableDescription) (changed bool, err error) {
	if l.stored == nil {
		stored, err := l.store.loadDescriptions(ctx, l.environmentID)
		if err != nil {
			return false, err
		}
		l.stored = stored
	}
	prev, inSession := l.seen[oid]
	if !inSession {
		st, known := l.stored[oid]
		switch {
		case !known:
			// The first sight of the table: nothing to compare with.
			l.seen[oid] = desc
			_, err := l.store.saveDescription(ctx, l.environmentID, oid, lsn, desc, nil)
			return false, err
		case lsn <= st.lsn:
			// WAL read again after a restart: what changed from here on
			// is what this session reads next.
			l.seen[oid] = carryAttnums(st.desc, desc)
			// The record at the stored position may be the first after
			// a change, produced again: it is marked again.
			return lsn == st.lsn, nil
		}
		prev = st.desc
	}
	desc = carryAttnums(prev, desc)
	l.seen[oid] = desc
	diffs := diffDescriptions(prev, desc)
	if len(diffs) == 0 {
		return false, nil
	}
	change := &RelationChange{EnvironmentID: l.environmentID, RelationOID: oid, LSN: lsn,
		Old: prev, New: desc, Diffs: diffs, At: time.Now().UTC()}
	inserted, err := l.store.saveDescription(ctx, l.environmentID, oid, lsn, desc, change)
	if err != nil {
		return false, err
	}
	if inserted {
		attrs := []any{"table", desc.QualifiedName(), "lsn", lsn, "change", change.Description()}
		if prev.Schema != desc.Schema || prev.Table != desc.Table {
			attrs = append(attrs, "old_table", prev.QualifiedName())
		}
		l.log.Info("embedded capture: table changed", attrs...)
	}
	return true, nil
}

// carryAttnums gives the columns of desc whose attribute number the
// catalog no longer knew that of the column of the same name in prev. The
// catalog is read when a description arrives, and the server may send a
// table's description as it was before a DDL (with the last change before
// it) after the DDL committed: a column renamed since is not found by its
// old name.
func carryAttnums(prev, desc TableDescription) TableDescription {
	used := map[int16]bool{}
	missing := false
	for _, c := range desc.Columns {
		used[c.Attnum] = true
		missing = missing || c.Attnum == 0
	}
	if !missing {
		return desc
	}
	desc.Columns = slices.Clone(desc.Columns)
	for i, c := range desc.Columns {
		if c.Attnum != 0 {
			continue
		}
		for _, p := range prev.Columns {
			if p.Name == c.Name && p.Attnum != 0 && !used[p.Attnum] {
				desc.Columns[i].Attnum, used[p.Attnum] = p.Attnum, true
				break
			}
		}
	}
	return desc
}

// describe builds a table's description from the relation the encoder
// uses, its replica identity (pg_class.relreplident, as pgoutput sends it)
// and its columns' attribute numbers by name.
func describe(rel *dbzjson.Relation, identity byte, attnums map[string]int16) TableDescription {
	d := TableDescription{Schema: rel.Schema, Table: rel.Table, ReplicaIdentity: identityWord(identity),
		Columns: make([]ColumnDescription, len(rel.Columns))}
	type keyCol struct {
		name string
		pos  int
	}
	var keys []keyCol
	for i, c := range rel.Columns {
		d.Columns[i] = ColumnDescription{Name: c.Name, Type: c.TypeName, TypeOID: c.TypeOID, TypeMod: c.TypeMod, Attnum: attnums[c.Name]}
		if c.Key {
			keys = append(keys, keyCol{c.Name, c.KeyPos})
		}
	}
	slices.SortStableFunc(keys, func(a, b keyCol) int { return a.pos - b.pos })
	for _, k := range keys {
		d.Key = append(d.Key, k.name)
	}
	return d
}

func identityWord(b byte) string {
	switch b {
	case 'd':
		return "default"
	case 'n':
		return "nothing"
	case 'f':
		return "full"
	case 'i':
		return "index"
	}
	return string(rune(b))
}

// diffDescriptions lists how cur differs from old: the table's schema and
// name, then the columns in old's order (renamed, retyped, dropped), the
// columns added, the replica identity and the primary key. A column of old
// is the column of cur with its attribute number; where one of the two
// numbers is unknown, the column of the same name. A renamed key column
// alone does not change the key.
func diffDescriptions(old, cur TableDescription) []RelationDiff {
	var out []RelationDiff
	if old.Schema != cur.Schema {
		out = append(out, RelationDiff{Kind: DiffTableMoved, Old: old.Schema, New: cur.Schema})
	}
	if old.Table != cur.Table {
		out = append(out, RelationDiff{Kind: DiffTableRenamed, Old: old.Table, New: cur.Table})
	}
	match := make([]int, len(old.Columns))
	taken := make([]bool, len(cur.Columns))
	for i, oc := range old.Columns {
		match[i] = -1
		if oc.Attnum == 0 {
			continue
		}
		for j, nc := range cur.Columns {
			if !taken[j] && nc.Attnum == oc.Attnum {
				match[i], taken[j] = j, true
				break
			}
		}
	}
	for i, oc := range old.Columns {
		if match[i] >= 0 {
			continue
		}
		for j, nc := range cur.Columns {
			if !taken[j] && nc.Name == oc.Name && (oc.Attnum == 0 || nc.Attnum == 0) {
				match[i], taken[j] = j, true
				break
			}
		}
	}
	renamedTo := make(map[string]string, len(old.Columns))
	for i, oc := range old.Columns {
		if match[i] < 0 {
			out = append(out, RelationDiff{Kind: DiffColumnDropped, Column: oc.Name, Old: oc.Type})
			continue
		}
		nc := cur.Columns[match[i]]
		renamedTo[oc.Name] = nc.Name
		if nc.Name != oc.Name {
			out = append(out, RelationDiff{Kind: DiffColumnRenamed, Column: nc.Name, Old: oc.Name, New: nc.Name})
		}
		if nc.TypeOID != oc.TypeOID || nc.TypeMod != oc.TypeMod {
			out = append(out, RelationDiff{Kind: DiffColumnType, Column: nc.Name, Old: oc.Type, New: nc.Type})
		}
	}
	for j, nc := range cur.Columns {
		if !taken[j] {
			out = append(out, RelationDiff{Kind: DiffColumnAdded, Column: nc.Name, New: nc.Type})
		}
	}
	if old.ReplicaIdentity != cur.ReplicaIdentity {
		out = append(out, RelationDiff{Kind: DiffReplicaIdentity, Old: old.ReplicaIdentity, New: cur.ReplicaIdentity})
	}
	sameKey := len(old.Key) == len(cur.Key)
	for i := 0; sameKey && i < len(old.Key); i++ {
		to, ok := renamedTo[old.Key[i]]
		sameKey = ok && to == cur.Key[i]
	}
	if !sameKey {
		out = append(out, RelationDiff{Kind: DiffPrimaryKey, Old: keyWords(old.Key), New: keyWords(cur.Key)})
	}
	return out
}

func keyWords(key []string) string {
	if len(key) == 0 {
		return "none"
	}
	return "(" + strings.Join(key, ", ") + ")"
}
