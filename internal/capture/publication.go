package capture

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdcq/cdcq/internal/pgsource"
)

// The publication holds the tables of all non-system schemas. A superuser
// gets FOR ALL TABLES, which PostgreSQL limits to user tables and which
// picks up tables created later from their first row on. Other roles may
// only publish tables they own: they get FOR TABLE with every such table,
// and the runner adds tables created later when it next refreshes the
// publication (rows written to a new table before that are not captured).
// Tables the role does not own are left out and reported.

// candidateTable is a table that could be captured.
type candidateTable struct {
	OID    uint32
	Schema string
	Name   string
	// Identity is pg_class.relreplident: d(efault), n(othing), f(ull), i(ndex).
	Identity byte
	HasPK    bool
	// Owned says the role may alter the table (owner, member of the
	// owning role, or superuser).
	Owned bool
}

func (t candidateTable) ident() string { return pgx.Identifier{t.Schema, t.Name}.Sanitize() }
func (t candidateTable) String() string {
	return t.Schema + "." + t.Name
}

// userTables lists the ordinary, permanent tables (partitions included,
// partitioned parents not: changes are published by partition, as
// Debezium names its topics) in schemas that are not PostgreSQL's own.
func userTables(ctx context.Context, conn *pgx.Conn) ([]candidateTable, error) {
	rows, err := conn.Query(ctx, `
		SELECT c.oid, n.nspname, c.relname, c.relreplident::text,
		       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),
		       pg_has_role(c.relowner, 'USAGE')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND c.oid >= 16384
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
		ORDER BY n.nspname, c.relname`)
	if err != nil {
		return nil, pgsource.Classify("list tables", err)
	}
	return pgx.CollectRows(rows, scanCandidate)
}

func scanCandidate(r pgx.CollectableRow) (candidateTable, error) {
	var t candidateTable
	var identity string
	err := r.Scan(&t.OID, &t.Schema, &t.Name, &identity, &t.HasPK, &t.Owned)
	if identity != "" {
		t.Identity = identity[0]
	}
	return t, err
}

// publishedTables lists the tables the publication publishes.
func publishedTables(ctx context.Context, conn *pgx.Conn, publication string) ([]candidateTable, error) {
	rows, err := conn.Query(ctx, `
		SELECT c.oid, n.nspname, c.relname, c.relreplident::text,
		       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),
		       pg_has_role(c.relowner, 'USAGE')
		FROM pg_publication_tables p
		JOIN pg_namespace n ON n.nspname = p.schemaname
		JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename
		WHERE p.pubname = $1 AND c.relkind = 'r'
		ORDER BY n.nspname, c.relname`, publication)
	if err != nil {
		return nil, pgsource.Classify("list tables of publication "+publication, err)
	}
	return pgx.CollectRows(rows, scanCandidate)
}

// ensurePublication creates the publication when it is missing and, for a
// FOR TABLE publication, adds the user tables it lacks. It returns
// warnings about tables it cannot capture.
func ensurePublication(ctx context.Context, conn *pgx.Conn, publication string, superuser bool) ([]string, error) {
	var allTables bool
	err := conn.QueryRow(ctx, `SELECT puballtables FROM pg_publication WHERE pubname = $1`, publication).Scan(&allTables)
	exists := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, pgsource.Classify("read publication "+publication, err)
	}
	pub := pgx.Identifier{publication}.Sanitize()
	if !exists && superuser {
		if _, err := conn.Exec(ctx, `CREATE PUBLICATION `+pub+` FOR ALL TABLES`); err != nil && !isDuplicate(err) {
			return nil, publicationError(publication, err)
		}
		return nil, nil
	}
	if exists && allTables {
		return nil, nil
	}
	tables, err := userTables(ctx, conn)
	if err != nil {
		return nil, err
	}
	var warnings []string
	var add []candidateTable
	for _, t := range tables {
		switch {
		case !t.Owned:
			warnings = append(warnings, fmt.Sprintf("table %s is not captured: the role does not own it (its owner or a superuser must add it to publication %s)", t, publication))
		case t.Identity == 'n' || (t.Identity == 'd' && !t.HasPK):
			// Publishing it before its replica identity is fixed would make
			// the application's UPDATEs and DELETEs on it fail.
			if err := setReplicaIdentityFull(ctx, conn, t); err != nil {
				warnings = append(warnings, fmt.Sprintf("table %s is not captured: it has no primary key and its REPLICA IDENTITY could not be set to FULL (%v)", t, err))
				continue
			}
			add = append(add, t)
		default:
			add = append(add, t)
		}
	}
	if !exists {
		sql := `CREATE PUBLICATION ` + pub
		if len(add) > 0 {
			sql += ` FOR TABLE ` + joinIdents(add)
		}
		if _, err := conn.Exec(ctx, sql); err != nil && !isDuplicate(err) {
			return warnings, publicationError(publication, err)
		}
		return warnings, nil
	}
	published, err := publishedTables(ctx, conn, publication)
	if err != nil {
		return warnings, err
	}
	have := make(map[uint32]bool, len(published))
	for _, t := range published {
		have[t.OID] = true
	}
	var missing []candidateTable
	for _, t := range add {
		if !have[t.OID] {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		if _, err := conn.Exec(ctx, `ALTER PUBLICATION `+pub+` ADD TABLE `+joinIdents(missing)); err != nil {
			return warnings, publicationError(publication, err)
		}
	}
	return warnings, nil
}

// ensureReplicaIdentity sets REPLICA IDENTITY FULL on the published tables
// that lack it, so that updates and deletes carry before-images, and
// returns a warning for each table where that was not possible.
func ensureReplicaIdentity(ctx context.Context, conn *pgx.Conn, tables []candidateTable) []string {
	var warnings []string
	for _, t := range tables {
		if t.Identity == 'f' {
			continue
		}
		if !t.Owned {
			warnings = append(warnings, fmt.Sprintf("table %s: updates and deletes carry no before-image: its REPLICA IDENTITY is %s and the role may not change it (run ALTER TABLE %s REPLICA IDENTITY FULL as its owner)",
				t, identityName(t.Identity), t.ident()))
			continue
		}
		if err := setReplicaIdentityFull(ctx, conn, t); err != nil {
			warnings = append(warnings, fmt.Sprintf("table %s: updates and deletes carry no before-image: setting REPLICA IDENTITY FULL failed: %v", t, err))
		}
	}
	return warnings
}

// setReplicaIdentityFull changes a table's replica identity. ALTER TABLE
// needs an ACCESS EXCLUSIVE lock for a moment: it gives up after a short
// wait rather than queue the application's queries behind it.
func setReplicaIdentityFull(ctx context.Context, conn *pgx.Conn, t candidateTable) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '2s'`); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `ALTER TABLE `+t.ident()+` REPLICA IDENTITY FULL`); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func identityName(b byte) string {
	switch b {
	case 'd':
		return "DEFAULT"
	case 'n':
		return "NOTHING"
	case 'i':
		return "USING INDEX"
	case 'f':
		return "FULL"
	}
	return string(b)
}

func joinIdents(ts []candidateTable) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = t.ident()
	}
	return strings.Join(parts, ", ")
}

func isDuplicate(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42710" // duplicate_object
}

func publicationError(publication string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42501" {
		return pgsource.Classify(fmt.Sprintf("create publication %s (the role needs CREATE on the database, and ownership of the tables or superuser)", publication), err)
	}
	return pgsource.Classify("create publication "+publication, err)
}
