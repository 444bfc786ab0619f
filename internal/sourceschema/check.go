package sourceschema

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cdcq/cdcq/internal/prismaschema"
	"github.com/cdcq/cdcq/internal/sqlplan"
)

// Options says what the engine that runs the query needs beyond the
// values' meaning.
type Options struct {
	// ExactTypes: the engine reads values into the plan's declared types
	// (Flink): a database type whose values the declared type cannot hold
	// exactly (more integer digits, a larger numeric scale, more
	// fractional-second digits, bigint values into an INT) is a problem,
	// even when the change kept the values' meaning.
	ExactTypes bool
	// NeedBeforeImages: the engine needs before-images of updates and
	// deletes (Flink's debezium-json): REPLICA IDENTITY other than FULL is
	// a problem.
	NeedBeforeImages bool
}

// Problem is one way the database does not fit the query.
type Problem struct {
	Table Name
	// Column is the database name of the column, as the plan names it;
	// "" for a problem of the table.
	Column string
	// Message is a sentence without a trailing period, in lower case, that
	// names the table and the column by their database names.
	Message string
}

// Error returns the message, which names the table and the column.
func (p Problem) Error() string { return p.Message }

// CheckCreate returns every mismatch between the plan (the Prisma schema)
// and the database db (from Read) for what the query reads: missing tables
// and columns, generated columns, incompatible types (see the package
// documentation), a required Prisma field on a column that allows NULL, a
// primary key other than the Prisma schema's, and, with
// opts.NeedBeforeImages, a replica identity other than FULL.
//
// A Prisma list is not required to be NOT NULL: Prisma creates list
// columns without the constraint and cannot describe it.
func CheckCreate(plan *sqlplan.Plan, db map[Name]*Table, opts Options) []Problem {
	var ps []Problem
	for _, w := range readTables(plan) {
		t := db[w.name]
		if t == nil {
			ps = append(ps, Problem{Table: w.name, Message: fmt.Sprintf("table %s%s does not exist", w.name, w.model())})
			continue
		}
		for _, rc := range w.columns {
			add := func(format string, args ...any) {
				ps = append(ps, Problem{Table: w.name, Column: rc.Name, Message: fmt.Sprintf(format, args...)})
			}
			ref := w.name.String() + "." + rc.Name
			f := w.field(rc.Name)
			c := t.Column(rc.Name)
			if c == nil {
				add("column %s%s does not exist", ref, parenthesized(f.prismaName()))
				continue
			}
			if c.Generated {
				add("column %s is a generated column, whose values logical replication does not send", ref)
			}
			// declared is "numeric(12,2) (Decimal @db.Decimal(12,2))", with
			// the field's name when it is not the column's.
			declared := f.prismaType()
			if n := f.prismaName(); n != "" {
				declared = n + " " + declared
			}
			declared = rc.Type.String() + " (" + declared + ")"
			if !keepsMeaning(planType(rc.Type), c.typed()) {
				add("column %s is %s, but the Prisma schema declares %s", ref, c.TypeName, declared)
			} else if why := exactness(opts, rc.Type, c.Type); why != "" {
				add("column %s is %s and the Prisma schema declares %s: %s", ref, c.TypeName, declared, why)
			}
			if required(rc) && !c.NotNull {
				who := "the Prisma field"
				if n := f.prismaName(); n != "" {
					who += " " + n
				}
				add("column %s allows NULL, but %s is required (%s, not %s?)", ref, who, f.prismaBase(), f.prismaBase())
			}
		}
		if !sameSet(t.PrimaryKey, w.key) {
			msg := fmt.Sprintf("the primary key of table %s is %s, but the Prisma schema says %s", w.name, columnList(t.PrimaryKey), columnList(w.key))
			if len(t.PrimaryKey) == 0 {
				msg = fmt.Sprintf("table %s has no primary key, but the Prisma schema says %s", w.name, columnList(w.key))
			}
			ps = append(ps, Problem{Table: w.name, Message: msg})
		}
		if opts.NeedBeforeImages && t.ReplicaIdentity != 'f' {
			ps = append(ps, Problem{Table: w.name, Message: fmt.Sprintf(
				"table %s has REPLICA IDENTITY %s; the engine needs REPLICA IDENTITY FULL, for the old row of updates and deletes",
				w.name, replicaIdentityName(t.ReplicaIdentity))})
		}
	}
	return ps
}

// CheckRunning returns what, in the observation current (from Reread),
// breaks the running query: a table the query reads dropped, renamed or
// created again; a column it reads dropped, renamed or replaced; a type
// change that alters existing values (see the package documentation); a
// required column that now allows NULL; a changed or dropped primary key;
// and, with opts.NeedBeforeImages, a replica identity lowered from FULL
// since previous (a table not seen before may still be waiting for the
// capture to set FULL).
//
// previous is the observation before (nil when unknown). Types are
// compared with previous when it has the column, so that a change is
// judged by the values the column held, and with the plan otherwise;
// renames are told from drops by OID and attnum, which only previous
// knows. It allocates little and is meant to run on every poll.
func CheckRunning(plan *sqlplan.Plan, previous, current map[Name]*Table, opts Options) []Problem {
	var ps []Problem
	for _, w := range readTables(plan) {
		cur := current[w.name]
		prev := previous[w.name]
		if cur == nil {
			msg := fmt.Sprintf("table %s was dropped or renamed", w.name)
			if prev != nil {
				for _, t := range current {
					if t.OID == prev.OID {
						msg = fmt.Sprintf("table %s was renamed to %s", w.name, t.Name)
						break
					}
				}
			}
			ps = append(ps, Problem{Table: w.name, Message: msg})
			continue
		}
		if prev != nil && prev.OID != cur.OID {
			ps = append(ps, Problem{Table: w.name, Message: fmt.Sprintf("table %s was dropped and created again", w.name)})
			continue
		}
		// renamed maps a read column's new name to the plan's, so that the
		// primary key check does not report a rename twice.
		var renamed map[string]string
		for _, rc := range w.columns {
			add := func(format string, args ...any) {
				ps = append(ps, Problem{Table: w.name, Column: rc.Name, Message: fmt.Sprintf(format, args...)})
			}
			ref := w.name.String() + "." + rc.Name
			c := cur.Column(rc.Name)
			var pc *Column
			if prev != nil {
				pc = prev.Column(rc.Name)
			}
			if c == nil {
				if pc != nil {
					if nc := cur.columnNum(pc.Num); nc != nil {
						if renamed == nil {
							renamed = map[string]string{}
						}
						renamed[nc.Name] = rc.Name
						add("column %s was renamed to %s", ref, nc.Name)
						continue
					}
				}
				add("column %s was renamed or dropped", ref)
				continue
			}
			if pc != nil && pc.Num != c.Num {
				add("column %s was dropped or renamed, and a new column took its name", ref)
				continue
			}
			if c.Generated {
				add("column %s is a generated column, whose values logical replication does not send", ref)
			}
			from, fromName := planType(rc.Type), rc.Type.String()
			if pc != nil {
				from, fromName = pc.typed(), pc.TypeName
			}
			why := exactness(opts, rc.Type, c.Type)
			switch {
			case !keepsMeaning(from, c.typed()):
				add("column %s changed type from %s to %s", ref, fromName, c.TypeName)
			case why != "" && canonical(from.t) != canonical(c.Type):
				add("column %s changed type from %s to %s: %s", ref, fromName, c.TypeName, why)
			case why != "":
				add("column %s is %s: %s", ref, c.TypeName, why)
			case pc != nil && pc.TypeOID == c.TypeOID:
				if v, ok := lostLabel(pc.EnumLabels, c.EnumLabels); ok {
					add("the enum type of column %s no longer has the value '%s': it was renamed", ref, v)
				}
			}
			if required(rc) && !c.NotNull {
				add("column %s now allows NULL, but the Prisma schema says it is required", ref)
			}
		}
		key := cur.PrimaryKey
		if renamed != nil {
			key = make([]string, len(cur.PrimaryKey))
			for i, k := range cur.PrimaryKey {
				if old, ok := renamed[k]; ok {
					k = old
				}
				key[i] = k
			}
		}
		if !sameSet(key, w.key) {
			msg := fmt.Sprintf("the primary key of table %s changed from %s to %s", w.name, columnList(w.key), columnList(cur.PrimaryKey))
			if len(key) == 0 {
				msg = fmt.Sprintf("table %s no longer has a primary key", w.name)
			}
			ps = append(ps, Problem{Table: w.name, Message: msg})
		}
		// The capture sets FULL when it starts (Debezium's
		// replica.identity.autoset.values does it asynchronously): only a
		// table seen at FULL and lowered since is a change that breaks
		// the query.
		if opts.NeedBeforeImages && prev != nil && prev.ReplicaIdentity == 'f' && cur.ReplicaIdentity != 'f' {
			ps = append(ps, Problem{Table: w.name, Message: fmt.Sprintf(
				"the replica identity of table %s changed from FULL to %s; the engine needs FULL, for the old row of updates and deletes",
				w.name, replicaIdentityName(cur.ReplicaIdentity))})
		}
	}
	return ps
}

// exactness is inexact when opts.ExactTypes is set, "" otherwise.
func exactness(opts Options, plan, db sqlplan.Type) string {
	if !opts.ExactTypes {
		return ""
	}
	return inexact(plan, db)
}

// readTable is a table the plan reads, with the columns of every source
// that reads it (a self join reads one table twice).
type readTable struct {
	name    Name
	table   *prismaschema.Table // the first source's model
	columns []sqlplan.SourceColumn
	key     []string
}

// readTables returns the tables the plan reads, each once, in the order
// of Tables.
func readTables(plan *sqlplan.Plan) []readTable {
	var out []readTable
	for _, s := range plan.Sources {
		name := Name{Schema: s.Schema, Table: s.Name}
		i := slices.IndexFunc(out, func(r readTable) bool { return r.name == name })
		if i < 0 {
			out = append(out, readTable{name: name, table: s.Table, key: s.PrimaryKey})
			i = len(out) - 1
		}
		r := &out[i]
		for _, c := range s.Columns {
			if !slices.ContainsFunc(r.columns, func(x sqlplan.SourceColumn) bool { return x.Name == c.Name }) {
				r.columns = append(r.columns, c)
			}
		}
	}
	return out
}

// model names the Prisma model in parentheses when its name is not the
// table's.
func (r *readTable) model() string {
	if r.table == nil || r.table.ModelName == "" || r.table.ModelName == r.name.Table {
		return ""
	}
	return " (Prisma model " + r.table.ModelName + ")"
}

// field returns the Prisma field of a column.
func (r *readTable) field(column string) prismaField {
	f := prismaField{column: column}
	if r.table != nil {
		f.model = r.table.ModelName
		if f.model == "" {
			f.model = r.table.Name
		}
		for _, c := range r.table.Columns {
			if c.Name == column {
				f.col = c
				break
			}
		}
	}
	return f
}

// prismaField is the Prisma field of a column, for messages.
type prismaField struct {
	column string
	model  string
	col    *prismaschema.Column
}

// prismaName returns "Model.field" when the field's name is not the
// column's (@map), "" otherwise.
func (f prismaField) prismaName() string {
	if f.col == nil || f.col.FieldName == f.column {
		return ""
	}
	return f.model + "." + f.col.FieldName
}

// prismaBase returns the field's Prisma type without modifiers: "String".
func (f prismaField) prismaBase() string {
	if f.col == nil {
		return "?"
	}
	if f.col.Kind == prismaschema.UnsupportedColumn {
		return fmt.Sprintf("Unsupported(%q)", f.col.Unsupported)
	}
	return f.col.Type
}

// prismaType returns the field's Prisma type as the schema writes it:
// "Decimal? @db.Decimal(12,2)".
func (f prismaField) prismaType() string {
	s := f.prismaBase()
	if f.col == nil {
		return s
	}
	switch {
	case f.col.List:
		s += "[]"
	case f.col.Optional:
		s += "?"
	}
	if f.col.NativeType != "" {
		s += " @db." + f.col.NativeType
	}
	return s
}

func parenthesized(s string) string {
	if s == "" {
		return ""
	}
	return " (Prisma field " + s + ")"
}

// required reports whether the plan takes the column's values to be never
// NULL: a required Prisma field that is not a list.
func required(c sqlplan.SourceColumn) bool {
	return !c.Nullable && !c.Type.Array
}

// lostLabel returns a label of before that after does not have.
func lostLabel(before, after []string) (string, bool) {
	for _, l := range before {
		if !slices.Contains(after, l) {
			return l, true
		}
	}
	return "", false
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// columnList spells column names as "(a, b)".
func columnList(names []string) string {
	return "(" + strings.Join(names, ", ") + ")"
}

func replicaIdentityName(r byte) string {
	switch r {
	case 'd':
		return "DEFAULT"
	case 'f':
		return "FULL"
	case 'i':
		return "USING INDEX"
	case 'n':
		return "NOTHING"
	}
	return fmt.Sprintf("%q", r)
}
