package flinksql

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/cdcq/cdcq/internal/names"
	"github.com/cdcq/cdcq/internal/sqlplan"
)

// SinkTable is the session-local name of the result sink.
const SinkTable = "cdcq_result"

// QueryIDColumn is the first column of the result topic's key and value.
const QueryIDColumn = sqlplan.QueryIDColumn

// PartitionDiscoveryInterval is how often a source looks for its topic
// (and new partitions).
const PartitionDiscoveryInterval = "30 s"

// Options says where a query's job reads and writes.
type Options struct {
	// EnvironmentID names the change topics (<environmentId>.<schema>.<table>)
	// and the result topic. Required.
	EnvironmentID string
	// QueryID fills the query_id column. Required.
	QueryID string
	// PipelineName is the job's name (pipeline.name) and the sources'
	// consumer group. Required.
	PipelineName string
	// BootstrapServers is the Kafka bootstrap list as the Flink cluster
	// reaches it. Required.
	BootstrapServers string
	// KafkaProperties are extra Kafka client properties for every source
	// and the sink ('properties.<key>'), for example security.protocol.
	// Their values may be secrets: they appear in the statements only.
	KafkaProperties map[string]string
	// Settings are extra SET statements, after cdcq's own (which they may
	// override, except pipeline.name).
	Settings map[string]string
	// StartOffsets, by the plan's source topic ("<schema>.<table>") and
	// partition, are where a source starts reading instead of the earliest
	// offset: after the table's last TRUNCATE, which Flink's debezium-json
	// format cannot apply. A source with start offsets names its topic
	// exactly (the topic exists: it holds the truncate); partitions not
	// listed start at the earliest offset.
	StartOffsets map[string]map[int32]int64
}

func (o Options) validate() error {
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"EnvironmentID", o.EnvironmentID}, {"QueryID", o.QueryID},
		{"PipelineName", o.PipelineName}, {"BootstrapServers", o.BootstrapServers},
	} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("flinksql: options lack %s", strings.Join(missing, ", "))
	}
	for k := range o.KafkaProperties {
		switch k {
		case "bootstrap.servers", "group.id":
			return fmt.Errorf("flinksql: KafkaProperties must not set %s; it comes from Options", k)
		}
	}
	if _, ok := o.Settings["pipeline.name"]; ok {
		return errors.New("flinksql: Settings must not set pipeline.name; it comes from Options.PipelineName")
	}
	return nil
}

// Translate returns the statements that run plan as a Flink job, in the
// order they must be executed. A plan with something Flink cannot compute
// the way PostgreSQL does gives an *UnsupportedError.
func Translate(plan *sqlplan.Plan, opts Options) ([]string, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if plan == nil || len(plan.Sources) == 0 || len(plan.Outputs) == 0 {
		return nil, errors.New("flinksql: the plan has no sources or no outputs")
	}
	stmts, err := (&translator{plan: plan, opts: opts}).translate()
	var ue *UnsupportedError
	if errors.As(err, &ue) {
		// One UnsupportedError, whatever wrapped it, naming columns as the
		// query does.
		msg := strings.Replace(err.Error(), (&UnsupportedError{}).Error(), "", 1)
		return nil, &UnsupportedError{Message: plan.WithAliases(msg)}
	}
	return stmts, err
}

func (t *translator) translate() ([]string, error) {
	stmts := t.settings()
	sources, err := t.sourceTables()
	if err != nil {
		return nil, err
	}
	stmts = append(stmts, sources...)
	sink, insert, err := t.result()
	if err != nil {
		return nil, err
	}
	return append(stmts, sink, insert), nil
}

// Script joins statements into one text, each ended by a semicolon.
func Script(stmts []string) string {
	var b strings.Builder
	for i, s := range stmts {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(s)
		b.WriteString(";\n")
	}
	return b.String()
}

type translator struct {
	plan *sqlplan.Plan
	opts Options
}

func (t *translator) settings() []string {
	out := []string{
		setStmt("pipeline.name", t.opts.PipelineName),
		setStmt("table.exec.source.cdc-events-duplicate", "true"),
		setStmt("table.local-time-zone", "UTC"),
	}
	for _, k := range slices.Sorted(maps.Keys(t.opts.Settings)) {
		out = append(out, setStmt(k, t.opts.Settings[k]))
	}
	return out
}

func setStmt(k, v string) string {
	return "SET " + quoteString(k) + " = " + quoteString(v)
}

// sourceTables declares one table per topic the plan reads (a self-join
// reads one table under two aliases).
func (t *translator) sourceTables() ([]string, error) {
	type table struct {
		schema, name string
		cols         []sqlplan.SourceColumn
		pk           []string
	}
	byTopic := map[string]*table{}
	for _, s := range t.plan.Sources {
		tb := byTopic[s.Topic]
		if tb == nil {
			tb = &table{schema: s.Schema, name: s.Name, pk: s.PrimaryKey}
			byTopic[s.Topic] = tb
		}
		for _, c := range s.Columns {
			if !slices.ContainsFunc(tb.cols, func(x sqlplan.SourceColumn) bool { return x.Name == c.Name }) {
				tb.cols = append(tb.cols, c)
			}
		}
	}
	var out []string
	for _, topic := range slices.Sorted(maps.Keys(byTopic)) {
		tb := byTopic[topic]
		if len(tb.pk) == 0 {
			return nil, unsupportedf("table %s has no primary key", topic)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "CREATE TEMPORARY TABLE %s (\n", quoteIdent(topic))
		for _, c := range tb.cols {
			st, _, err := sourceType(c.Type)
			if err != nil {
				return nil, fmt.Errorf("column %s of %s: %w", c.Name, topic, err)
			}
			fmt.Fprintf(&b, "  %s %s,\n", quoteIdent(c.Name), st)
		}
		fmt.Fprintf(&b, "  PRIMARY KEY (%s) NOT ENFORCED\n) WITH (\n", identList(tb.pk))
		fullName := names.TopicPrefix(t.opts.EnvironmentID) + "." + topic
		starts := t.opts.StartOffsets[topic]
		opts := []option{{"connector", "kafka"}}
		if len(starts) > 0 {
			opts = append(opts, option{"topic", fullName})
		} else {
			opts = append(opts, option{"topic-pattern", regexQuote(fullName)})
		}
		opts = append(opts,
			option{"scan.topic-partition-discovery.interval", PartitionDiscoveryInterval},
			option{"properties.bootstrap.servers", t.opts.BootstrapServers},
			option{"properties.group.id", t.opts.PipelineName},
		)
		opts = append(opts, t.kafkaProperties()...)
		if len(starts) > 0 {
			var parts []string
			for _, p := range slices.Sorted(maps.Keys(starts)) {
				parts = append(parts, fmt.Sprintf("partition:%d,offset:%d", p, starts[p]))
			}
			opts = append(opts,
				option{"scan.startup.mode", "specific-offsets"},
				option{"scan.startup.specific-offsets", strings.Join(parts, ";")})
		} else {
			opts = append(opts, option{"scan.startup.mode", "earliest-offset"})
		}
		opts = append(opts,
			option{"format", "debezium-json"},
			option{"debezium-json.schema-include", "false"},
			option{"debezium-json.ignore-parse-errors", "false"},
			option{"debezium-json.timestamp-format.standard", "ISO-8601"},
		)
		writeOptions(&b, opts)
		out = append(out, b.String())
	}
	return out, nil
}

type option struct{ key, value string }

func (t *translator) kafkaProperties() []option {
	var out []option
	for _, k := range slices.Sorted(maps.Keys(t.opts.KafkaProperties)) {
		out = append(out, option{"properties." + k, t.opts.KafkaProperties[k]})
	}
	return out
}

func writeOptions(b *strings.Builder, opts []option) {
	for i, o := range opts {
		sep := ","
		if i == len(opts)-1 {
			sep = ""
		}
		fmt.Fprintf(b, "  %s = %s%s\n", quoteString(o.key), quoteString(o.value), sep)
	}
	b.WriteString(")")
}

// sinkColumn is one column of the result sink.
type sinkColumn struct {
	name  string
	ftype string
	// expr renders the column's value over the grouped relation.
	expr string
}

// Names inside the generated INSERT: the query id and the group key as
// columns of the matched and grouped relations.
const (
	queryIDAlias = "q"
	groupAlias   = "grp"
	groupedAlias = "grouped"
)

// result builds the sink's DDL and the INSERT.
//
// The record key is {"query_id": ..., "group": {<key columns>}}: the group
// key is one ROW column, which Flink allows as (part of) a primary key
// although its fields may be NULL, so a NULL group is a group of its own,
// as in PostgreSQL. The record value holds every output column, flat.
func (t *translator) result() (string, string, error) {
	p := t.plan
	for _, o := range p.Outputs {
		if o.Name == QueryIDColumn {
			return "", "", unsupportedf("an output column is named %s, which the result topic uses for the query id: rename it with AS", QueryIDColumn)
		}
	}
	prefix := t.keyPrefix()
	g := &renderer{plan: p, group: true}
	keyNames := p.GroupKeyNames()
	keys := []sinkColumn{{name: prefix + QueryIDColumn, ftype: "STRING", expr: quoteIdent(queryIDAlias)}}
	values := []sinkColumn{{name: QueryIDColumn, ftype: "STRING", expr: quoteIdent(queryIDAlias)}}
	keyOutput := map[int]bool{}
	var fields []string
	for i, k := range p.GroupBy {
		ft, err := flinkType(k.ResultType())
		if err != nil {
			return "", "", fmt.Errorf("GROUP BY %s: %w", k, err)
		}
		fields = append(fields, quoteIdent(keyNames[i])+" "+ft)
		for j, o := range p.Outputs {
			if ref, ok := o.Expr.(*sqlplan.GroupRef); ok && ref.Index == i && o.Name == keyNames[i] && !keyOutput[j] {
				keyOutput[j] = true
				break
			}
		}
		values = append(values, sinkColumn{name: keyNames[i], ftype: ft, expr: groupField(keyNames[i])})
	}
	if len(p.GroupBy) > 0 {
		keys = append(keys, sinkColumn{name: prefix + GroupKeyField, ftype: groupRowType(fields),
			expr: quoteIdent(groupedAlias) + "." + quoteIdent(groupAlias)})
	}
	for j, o := range p.Outputs {
		if keyOutput[j] {
			continue
		}
		ft, err := flinkType(o.Type)
		if err != nil {
			return "", "", fmt.Errorf("output %s: %w", o.Name, err)
		}
		e, err := g.expr(o.Expr)
		if err != nil {
			return "", "", fmt.Errorf("output %s: %w", o.Name, err)
		}
		if !t.typeKept(o.Expr) {
			e = "CAST(" + e + " AS " + ft + ")"
		}
		values = append(values, sinkColumn{name: o.Name, ftype: ft, expr: e})
	}

	var ddl strings.Builder
	fmt.Fprintf(&ddl, "CREATE TEMPORARY TABLE %s (\n", quoteIdent(SinkTable))
	primaryKey := make([]string, 0, len(keys))
	for _, c := range keys {
		fmt.Fprintf(&ddl, "  %s %s NOT NULL,\n", quoteIdent(c.name), c.ftype)
		primaryKey = append(primaryKey, c.name)
	}
	for _, c := range values {
		fmt.Fprintf(&ddl, "  %s %s,\n", quoteIdent(c.name), c.ftype)
	}
	fmt.Fprintf(&ddl, "  PRIMARY KEY (%s) NOT ENFORCED\n) WITH (\n", identList(primaryKey))
	opts := []option{
		{"connector", "upsert-kafka"},
		{"topic", names.ResultTopic(t.opts.EnvironmentID)},
		{"properties.bootstrap.servers", t.opts.BootstrapServers},
	}
	opts = append(opts, t.kafkaProperties()...)
	opts = append(opts,
		option{"key.format", "json"},
		option{"key.fields-prefix", prefix},
		option{"key.json.timestamp-format.standard", "ISO-8601"},
		option{"key.json.encode.decimal-as-plain-number", "true"},
		option{"value.format", "json"},
		option{"value.json.timestamp-format.standard", "ISO-8601"},
		option{"value.json.encode.decimal-as-plain-number", "true"},
		option{"value.fields-include", "EXCEPT_KEY"},
	)
	writeOptions(&ddl, opts)

	grouped, err := t.groupedRelation()
	if err != nil {
		return "", "", err
	}
	cols := append(slices.Clone(keys), values...)
	var ins strings.Builder
	fmt.Fprintf(&ins, "INSERT INTO %s\nSELECT\n", quoteIdent(SinkTable))
	for i, c := range cols {
		sep := ","
		if i == len(cols)-1 {
			sep = ""
		}
		fmt.Fprintf(&ins, "  %s AS %s%s\n", c.expr, quoteIdent(c.name), sep)
	}
	fmt.Fprintf(&ins, "FROM (\n%s\n) AS %s", indent(grouped, "  "), quoteIdent(groupedAlias))
	if p.Having != nil {
		h, err := g.expr(p.Having)
		if err != nil {
			return "", "", fmt.Errorf("HAVING: %w", err)
		}
		fmt.Fprintf(&ins, "\nWHERE %s", h)
	}
	return ddl.String(), ins.String(), nil
}

// GroupKeyField names the group key's object in the result record's key.
const GroupKeyField = "group"

// keyPrefix is the upsert-kafka 'key.fields-prefix': the sink names its key
// columns with it, so that they do not clash with the value's columns
// (query_id is in both), and the key format drops it again. It is chosen
// so that no output column starts with it.
func (t *translator) keyPrefix() string {
	prefix := "key_"
	for {
		clash := false
		for _, o := range t.plan.Outputs {
			if strings.HasPrefix(o.Name, prefix) {
				clash = true
				break
			}
		}
		if !clash {
			return prefix
		}
		prefix = "_" + prefix
	}
}

func groupRowType(fields []string) string {
	return "ROW<" + strings.Join(fields, ", ") + ">"
}

// groupField renders a field of the grouped relation's group key.
func groupField(name string) string {
	return quoteIdent(groupedAlias) + "." + quoteIdent(groupAlias) + "." + quoteIdent(name)
}

// typeKept reports outputs whose Flink type already is the sink column's:
// group keys, and counts (BIGINT).
func (t *translator) typeKept(e sqlplan.Expr) bool {
	switch e := e.(type) {
	case *sqlplan.GroupRef:
		return true
	case *sqlplan.AggRef:
		if e.Index >= 0 && e.Index < len(t.plan.Aggregates) {
			switch t.plan.Aggregates[e.Index].Func {
			case sqlplan.CountStar, sqlplan.Count, sqlplan.CountDistinct:
				return true
			}
		}
	}
	return false
}

// groupedRelation is the SELECT that computes one row per group: the query
// id as q, the group key as the ROW grp, and the aggregates as a1, a2, ...
//
// The query id is a grouping key, and it is computed from a column of the
// first source rather than written as a literal: Flink drops a constant
// grouping key, and the aggregation's upsert key must equal the sink's
// primary key (query_id, group) exactly. Otherwise Flink writes every
// update as a tombstone followed by the new row, and a reader of the topic
// sees the group vanish in between. COALESCE(NULLIF(id, <column>), id) is
// the id whatever the column holds.
func (t *translator) groupedRelation() (string, error) {
	p := t.plan
	r := &renderer{plan: p}
	global := len(p.GroupBy) == 0
	keyNames := p.GroupKeyNames()

	// The matched rows: query id, group key and aggregate arguments.
	type column struct{ expr, alias, ftype string }
	id := "CAST(" + quoteString(t.opts.QueryID) + " AS STRING)"
	// Any column serves; the first key column of the first source is there
	// in every row, in the type the source table declares.
	anchor := quoteIdent(p.Sources[0].Alias) + "." + quoteIdent(p.Sources[0].PrimaryKey[0])
	rowCols := []column{{
		expr:  "COALESCE(NULLIF(" + id + ", CAST(" + anchor + " AS STRING)), " + id + ")",
		alias: queryIDAlias, ftype: "STRING",
	}}
	if !global {
		var exprs, fields []string
		for i, k := range p.GroupBy {
			e, err := r.expr(k)
			if err != nil {
				return "", fmt.Errorf("GROUP BY %s: %w", k, err)
			}
			ft, err := flinkType(k.ResultType())
			if err != nil {
				return "", fmt.Errorf("GROUP BY %s: %w", k, err)
			}
			exprs = append(exprs, e)
			fields = append(fields, quoteIdent(keyNames[i])+" "+ft)
		}
		rowCols = append(rowCols, column{
			expr:  "CAST(ROW(" + strings.Join(exprs, ", ") + ") AS " + groupRowType(fields) + ")",
			alias: groupAlias,
		})
	}
	var aggs []string
	for i, a := range p.Aggregates {
		arg := "x" + strconv.Itoa(i+1)
		call, input, inputType, err := t.aggregate(r, a, quoteIdent(arg))
		if err != nil {
			return "", fmt.Errorf("%s: %w", aggText(a), err)
		}
		if input != "" {
			rowCols = append(rowCols, column{expr: input, alias: arg, ftype: inputType})
		}
		aggs = append(aggs, call+" AS "+quoteIdent(aggAlias(i)))
	}

	from, err := t.from(r)
	if err != nil {
		return "", err
	}
	var rows strings.Builder
	rows.WriteString("SELECT\n")
	if global {
		// A marker that is 1 for every matched row and NULL for the
		// sentinel row below, which makes the one group exist when no row
		// matches (count(*) counts markers).
		rowCols = append(rowCols[:1], append([]column{{expr: "1", alias: "m", ftype: "INT"}}, rowCols[1:]...)...)
	}
	for i, c := range rowCols {
		sep := ","
		if i == len(rowCols)-1 {
			sep = ""
		}
		fmt.Fprintf(&rows, "  %s AS %s%s\n", c.expr, quoteIdent(c.alias), sep)
	}
	rows.WriteString(from)
	if global {
		rows.WriteString("\nUNION ALL\nSELECT\n")
		for i, c := range rowCols {
			sep := ","
			if i == len(rowCols)-1 {
				sep = ""
			}
			v := "CAST(NULL AS " + c.ftype + ")"
			if c.alias == queryIDAlias {
				v = id
			}
			fmt.Fprintf(&rows, "  %s AS %s%s\n", v, quoteIdent(c.alias), sep)
		}
		s := rows.String()
		rows.Reset()
		rows.WriteString(strings.TrimSuffix(s, "\n"))
	}

	keys := []string{quoteIdent(queryIDAlias)}
	if !global {
		keys = append(keys, quoteIdent(groupAlias))
	}
	items := append(slices.Clone(keys), aggs...)
	var b strings.Builder
	b.WriteString("SELECT\n")
	for i, it := range items {
		sep := ","
		if i == len(items)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "  %s%s\n", it, sep)
	}
	fmt.Fprintf(&b, "FROM (\n%s\n) AS %s", indent(rows.String(), "  "), quoteIdent("matched"))
	fmt.Fprintf(&b, "\nGROUP BY %s", strings.Join(keys, ", "))
	return b.String(), nil
}

// aggregate renders an aggregate call over the matched rows' column arg,
// and the input column it needs (empty for count(*) of a grouped query)
// with its Flink type.
func (t *translator) aggregate(r *renderer, a sqlplan.Aggregate, arg string) (call, input, inputType string, err error) {
	global := len(t.plan.GroupBy) == 0
	if a.Func == sqlplan.CountStar {
		if global {
			return "COUNT(" + quoteIdent("m") + ")", "", "", nil
		}
		return "COUNT(*)", "", "", nil
	}
	if a.Arg == nil {
		return "", "", "", fmt.Errorf("flinksql: aggregate %s has no argument", a.Func)
	}
	in, err := r.expr(a.Arg)
	if err != nil {
		return "", "", "", err
	}
	argType := a.Arg.ResultType()
	inputType, err = flinkType(argType)
	if err != nil {
		return "", "", "", err
	}
	switch a.Func {
	case sqlplan.Count:
		return "COUNT(" + arg + ")", in, inputType, nil
	case sqlplan.CountDistinct:
		return "COUNT(DISTINCT " + arg + ")", in, inputType, nil
	case sqlplan.Min:
		return "MIN(" + arg + ")", in, inputType, nil
	case sqlplan.Max:
		return "MAX(" + arg + ")", in, inputType, nil
	case sqlplan.Sum, sqlplan.Avg:
		target, err := sumAvgInput(a.Func, argType, a.Type)
		if err != nil {
			return "", "", "", err
		}
		// A column's Flink type is known; an expression's may differ from
		// the plan's type (Flink derives DECIMAL precision its own way).
		if _, column := a.Arg.(*sqlplan.ColumnRef); !column || target != inputType {
			in = "CAST(" + in + " AS " + target + ")"
		}
		name := "SUM"
		if a.Func == sqlplan.Avg {
			name = "AVG"
		}
		return name + "(" + arg + ")", in, target, nil
	}
	return "", "", "", unsupportedf("aggregate %s", a.Func)
}

// sumAvgInput is the type sum and avg take their argument in, so that
// Flink computes in PostgreSQL's result type: sum(integer) in BIGINT,
// avg(integer) in DECIMAL, sum(numeric(10,2)) keeping scale 2.
func sumAvgInput(f sqlplan.AggFunc, arg, result sqlplan.Type) (string, error) {
	if arg.Kind == sqlplan.KindInterval || result.Kind == sqlplan.KindInterval {
		return "", unsupportedf("%s of interval values", f)
	}
	switch result.Kind {
	case sqlplan.KindNumeric:
		scale := defaultDecimalScale
		switch {
		case f == sqlplan.Sum && arg.IsInteger():
			scale = 0
		case f == sqlplan.Sum && arg.Kind == sqlplan.KindNumeric && arg.Precision != sqlplan.NoPrecision:
			scale = min(arg.Scale, defaultDecimalScale)
		}
		return fmt.Sprintf("DECIMAL(%d, %d)", maxDecimalPrecision, scale), nil
	}
	return flinkType(result)
}

func aggText(a sqlplan.Aggregate) string {
	if a.Arg == nil {
		return "count(*)"
	}
	return a.Func.String() + "(" + a.Arg.String() + ")"
}

// from renders FROM ... JOIN ... ON ... WHERE ... over the sources.
func (t *translator) from(r *renderer) (string, error) {
	p := t.plan
	var b strings.Builder
	src := func(i int) string {
		s := p.Sources[i]
		return quoteIdent(s.Topic) + " AS " + quoteIdent(s.Alias)
	}
	b.WriteString("FROM " + src(0))
	joined := map[int]bool{0: true}
	used := make([]bool, len(p.Joins))
	for len(joined) < len(p.Sources) {
		next := -1
		for i, j := range p.Joins {
			l, rr := j.Left.Source, j.Right.Source
			if joined[l] != joined[rr] {
				if joined[l] {
					next = rr
				} else {
					next = l
				}
				_ = i
				break
			}
		}
		if next < 0 {
			return "", unsupportedf("the sources are not all joined by equalities (a cross join)")
		}
		joined[next] = true
		var conds []string
		for i, j := range p.Joins {
			if used[i] || !joined[j.Left.Source] || !joined[j.Right.Source] {
				continue
			}
			used[i] = true
			l, err := r.strOperand(j.Left)
			if err != nil {
				return "", err
			}
			rr, err := r.strOperand(j.Right)
			if err != nil {
				return "", err
			}
			conds = append(conds, l+" = "+rr)
		}
		fmt.Fprintf(&b, "\nJOIN %s ON %s", src(next), strings.Join(conds, " AND "))
	}
	if p.Filter != nil {
		f, err := r.expr(p.Filter)
		if err != nil {
			return "", fmt.Errorf("WHERE: %w", err)
		}
		b.WriteString("\nWHERE " + f)
	}
	return b.String(), nil
}

func aggAlias(i int) string { return "a" + strconv.Itoa(i+1) }

func indent(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n")
}

// quoteIdent quotes a Flink SQL identifier with backticks.
func quoteIdent(s string) string {
	return "`" + strings.ReplaceAll(s, "`", "``") + "`"
}

func identList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = quoteIdent(n)
	}
	return strings.Join(q, ", ")
}

// quoteString quotes a Flink SQL string literal (standard SQL: a quote is
// doubled, a backslash is an ordinary character).
func quoteString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// regexQuote makes s a Java regular expression that matches s only: every
// ASCII character other than a letter, a digit or '_' is escaped.
func regexQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 128 && !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
