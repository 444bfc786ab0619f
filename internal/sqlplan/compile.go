package sqlplan

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"

	pg "github.com/pganalyze/pg_query_go/v6"
	"github.com/pganalyze/pg_query_go/v6/parser"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cdcq/cdcq/internal/prismaschema"
)

// MaxQueryBytes bounds the query text Compile and Normalize accept.
const MaxQueryBytes = 64 << 10

// maxDepth bounds the nesting of expressions.
const maxDepth = 200

// Compile parses sql with PostgreSQL's parser, resolves its names against
// schema and returns its logical plan.
//
// A problem with the query is returned as *Error (the first one found).
// Any other error concerns the schema: a nil schema, or a datasource that
// is not PostgreSQL. Compile only reads the schema and is safe to call
// from several goroutines at once.
func Compile(schema *prismaschema.Schema, sql string) (*Plan, error) {
	if schema == nil {
		return nil, errors.New("sqlplan: no schema")
	}
	if ds := schema.Datasource; ds != nil && ds.Provider != "postgresql" && ds.Provider != "postgres" {
		return nil, fmt.Errorf("sqlplan: the schema's datasource provider is %q; cdcq reads PostgreSQL databases", ds.Provider)
	}
	c := &compiler{
		schema:        schema,
		src:           sql,
		merged:        map[colKey]int{},
		locs:          map[Expr]int{},
		aggMemo:       map[*pg.Node]bool{},
		outputAliases: map[string]bool{},
	}
	plan, err := c.compile()
	if err != nil {
		return nil, err
	}
	return plan, nil
}

// compiler holds the state of one Compile call.
type compiler struct {
	schema *prismaschema.Schema
	src    string
	tokens []*pg.ScanToken
	tree   *pg.ParseResult

	sources []*source
	joins   []Join
	filters []Expr
	groupBy []Expr
	aggs    []Aggregate
	// merged maps the columns that JOIN ... USING merges to a merge group.
	merged map[colKey]int
	// locs remembers where in the query each expression node came from.
	locs map[Expr]int
	// aggMemo remembers which parse-tree nodes contain aggregate calls.
	aggMemo map[*pg.Node]bool
	// outputAliases are the AS names of the select list.
	outputAliases map[string]bool
	// clause names the clause being compiled, for messages.
	clause string
	depth  int
}

// source is a table reference of the FROM clause being compiled.
type source struct {
	alias         string
	explicitAlias bool
	table         *prismaschema.Table
	schema        string
	loc           int // byte offset of the table name
	used          map[string]bool
	// joinLoc is the offset of the ON condition that joins this source to
	// the ones before it, or -1.
	joinLoc int
}

func (s *source) describe() string {
	if s.explicitAlias {
		return QuoteIdent(s.table.Name) + " (" + QuoteIdent(s.alias) + ")"
	}
	return QuoteIdent(s.table.Name)
}

func (c *compiler) errAt(loc int, format string, args ...any) *Error {
	return errorAt(c.src, loc, format, args...)
}

func (c *compiler) compile() (*Plan, error) {
	sel, stmtLoc, err := c.parse()
	if err != nil {
		return nil, err
	}
	if err := c.rejectUnsupported(sel, stmtLoc); err != nil {
		return nil, err
	}
	if !c.isAggregateQuery(sel) {
		return nil, c.errAt(stmtLoc, "not an aggregate query: cdcq keeps queries with aggregate functions (count, sum, avg, min, max) or GROUP BY up to date, and this SELECT has neither")
	}
	for _, t := range sel.TargetList {
		if rt := t.GetResTarget(); rt != nil && rt.Name != "" {
			c.outputAliases[rt.Name] = true
		}
	}
	if len(sel.FromClause) == 0 {
		return nil, c.errAt(stmtLoc, "the query reads no table: add a FROM clause")
	}
	for _, item := range sel.FromClause {
		if _, err := c.fromItem(item); err != nil {
			return nil, err
		}
	}
	if sel.WhereClause != nil {
		if err := c.where(sel.WhereClause); err != nil {
			return nil, err
		}
	}
	if err := c.checkConnected(); err != nil {
		return nil, err
	}
	if err := c.groupClause(sel); err != nil {
		return nil, err
	}
	plan := &Plan{SQL: c.src}
	if err := c.selectList(sel, plan); err != nil {
		return nil, err
	}
	if sel.HavingClause != nil {
		c.clause = "HAVING"
		e, err := c.condition(sel.HavingClause, ctx{grouped: true})
		if err != nil {
			return nil, err
		}
		plan.Having = e
	}
	if err := c.orderBy(sel, plan); err != nil {
		return nil, err
	}
	plan.Sources = c.planSources()
	plan.Joins = c.joins
	plan.Filter = and(c.filters)
	plan.GroupBy = c.groupBy
	plan.Aggregates = c.aggs
	norm, err := pg.Deparse(c.tree)
	if err != nil {
		return nil, c.errAt(0, "cannot normalise the query: %v", err)
	}
	plan.Normalized = norm
	return plan, nil
}

// parse parses the text and returns its one SELECT statement and the offset
// where the statement starts.
func (c *compiler) parse() (*pg.SelectStmt, int, error) {
	tree, err := c.parseTree()
	if err != nil {
		return nil, 0, err
	}
	c.tree = tree
	scan, err := pg.Scan(c.src)
	if err != nil {
		return nil, 0, c.errAt(0, "%v", err)
	}
	c.tokens = scan.Tokens
	if len(tree.Stmts) == 0 {
		return nil, 0, c.errAt(len(c.src), "empty query: expected a SELECT statement")
	}
	if len(tree.Stmts) > 1 {
		return nil, 0, c.errAt(c.firstTokenFrom(int(tree.Stmts[1].StmtLocation)), "only one statement is allowed; a second one starts here")
	}
	raw := tree.Stmts[0]
	loc := c.firstTokenFrom(int(raw.StmtLocation))
	sel := raw.Stmt.GetSelectStmt()
	if sel == nil {
		return nil, 0, c.errAt(loc, "only a SELECT query can be cached, not %s", statementKind(raw.Stmt, c.src, loc))
	}
	return sel, loc, nil
}

// parseTree runs PostgreSQL's parser and turns its errors into *Error.
// A syntax error at a reserved word that names a table or column of the
// schema (Order, User, ...) says to quote it.
func (c *compiler) parseTree() (*pg.ParseResult, error) {
	tree, err := parseSQL(c.src)
	var e *Error
	if err == nil || !errors.As(err, &e) || !strings.HasPrefix(e.Message, "syntax error") {
		return tree, err
	}
	scan, serr := pg.Scan(c.src)
	if serr != nil {
		return nil, err
	}
	for _, t := range scan.Tokens {
		if int(t.Start) != e.Offset {
			continue
		}
		if t.KeywordKind != pg.KeywordKind_RESERVED_KEYWORD && t.KeywordKind != pg.KeywordKind_TYPE_FUNC_NAME_KEYWORD {
			break
		}
		word := c.src[t.Start:t.End]
		if name := c.nameLike(word); name != "" {
			e.Message += fmt.Sprintf("; %s is a reserved word in SQL: to name the table or column write it in double quotes, as %s", word, strqq(name))
		}
		break
	}
	return nil, err
}

// nameLike returns the database name of a table or column whose database
// or Prisma name equals word ignoring case, or "".
func (c *compiler) nameLike(word string) string {
	for _, t := range c.schema.Tables {
		if strings.EqualFold(t.Name, word) || strings.EqualFold(t.ModelName, word) {
			return t.Name
		}
	}
	for _, t := range c.schema.Tables {
		for _, col := range t.Columns {
			if strings.EqualFold(col.Name, word) || strings.EqualFold(col.FieldName, word) {
				return col.Name
			}
		}
	}
	return ""
}

func parseSQL(src string) (*pg.ParseResult, error) {
	if len(src) > MaxQueryBytes {
		return nil, errorAt(src, 0, "the query is %d bytes long; the limit is %d", len(src), MaxQueryBytes)
	}
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRuneInString(src[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return nil, errorAt(src, i, "the query is not valid UTF-8")
		case r == 0:
			return nil, errorAt(src, i, "the query contains a NUL character")
		}
		i += size
	}
	if err := checkComplexity(src); err != nil {
		return nil, err
	}
	tree, err := pg.Parse(src)
	if err != nil {
		var perr *parser.Error
		if errors.As(err, &perr) {
			off := len(src)
			if perr.Cursorpos > 0 {
				off = byteOffset(src, perr.Cursorpos)
			}
			return nil, errorAt(src, off, "%s", perr.Message)
		}
		return nil, errorAt(src, 0, "%v", err)
	}
	return tree, nil
}

// maxOperators bounds the operators and keywords of a query. pg_query
// serialises the parse tree recursively in C, and a long left-deep chain
// (1+1+1+..., x::int::int...) of some 20,000 operators overflows the
// thread's stack, which kills the process. Nesting through parentheses is
// already limited by the parser's own stack, so counting the tokens that
// can add a level bounds the depth well below that.
const maxOperators = 4000

// checkComplexity rejects a query with more than maxOperators operators and
// keywords, before the parser sees it. The scanner is not recursive.
func checkComplexity(src string) error {
	scan, err := pg.Scan(src)
	if err != nil {
		return nil // the parser reports the error with its position
	}
	n := 0
	for _, t := range scan.Tokens {
		switch t.Token {
		case pg.Token_IDENT, pg.Token_UIDENT, pg.Token_ICONST, pg.Token_FCONST, pg.Token_SCONST,
			pg.Token_USCONST, pg.Token_BCONST, pg.Token_XCONST, pg.Token_SQL_COMMENT, pg.Token_C_COMMENT,
			pg.Token_ASCII_44, pg.Token_ASCII_41, pg.Token_ASCII_46, pg.Token_ASCII_59: // , ) . ;
			continue
		}
		if n++; n > maxOperators {
			return errorAt(src, int(t.Start), "the query is too complex: it has more than %d operators and keywords", maxOperators)
		}
	}
	return nil
}

// statementKind names a statement that is not a SELECT.
func statementKind(n *pg.Node, src string, loc int) string {
	names := map[string]string{
		"InsertStmt": "INSERT", "UpdateStmt": "UPDATE", "DeleteStmt": "DELETE", "MergeStmt": "MERGE",
		"CreateStmt": "CREATE TABLE", "CreateTableAsStmt": "CREATE TABLE AS", "ViewStmt": "CREATE VIEW",
		"ExplainStmt": "EXPLAIN", "CopyStmt": "COPY", "TruncateStmt": "TRUNCATE", "DropStmt": "DROP",
	}
	if m := nodeMessage(n); m != nil {
		if s, ok := names[string(m.ProtoReflect().Descriptor().Name())]; ok {
			return s
		}
	}
	word := src[loc:]
	if i := strings.IndexFunc(word, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_') }); i >= 0 {
		word = word[:i]
	}
	if word == "" {
		return "this statement"
	}
	return strings.ToUpper(word)
}

// nodeMessage returns the message a Node wraps, or nil.
func nodeMessage(n *pg.Node) proto.Message {
	if n == nil {
		return nil
	}
	m := n.ProtoReflect()
	od := m.Descriptor().Oneofs().ByName("node")
	if od == nil {
		return nil
	}
	fd := m.WhichOneof(od)
	if fd == nil {
		return nil
	}
	return m.Get(fd).Message().Interface()
}

// walk calls fn for m and every message below it, depth first, skipping
// the children of a message for which fn returns false.
func walk(m proto.Message, fn func(proto.Message) bool) {
	if m == nil {
		return
	}
	var visit func(protoreflect.Message)
	visit = func(rm protoreflect.Message) {
		if !rm.IsValid() {
			return
		}
		if _, isNode := rm.Interface().(*pg.Node); !isNode && !fn(rm.Interface()) {
			return
		}
		rm.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			if fd.Message() == nil {
				return true
			}
			if fd.IsList() {
				l := v.List()
				for i := 0; i < l.Len(); i++ {
					visit(l.Get(i).Message())
				}
			} else if !fd.IsMap() {
				visit(v.Message())
			}
			return true
		})
	}
	visit(m.ProtoReflect())
}

// minLocation returns the smallest location of any node below m, or -1.
func minLocation(m proto.Message) int {
	best := -1
	walk(m, func(x proto.Message) bool {
		rm := x.ProtoReflect()
		if fd := rm.Descriptor().Fields().ByName("location"); fd != nil && fd.Kind() == protoreflect.Int32Kind {
			if l := int(rm.Get(fd).Int()); l >= 0 && (best < 0 || l < best) {
				best = l
			}
		}
		return true
	})
	return best
}

// nodeLoc returns the location of a node: its own, or the first below it.
func nodeLoc(n *pg.Node) int {
	m := nodeMessage(n)
	if m == nil {
		return -1
	}
	rm := m.ProtoReflect()
	if fd := rm.Descriptor().Fields().ByName("location"); fd != nil && fd.Kind() == protoreflect.Int32Kind {
		if l := int(rm.Get(fd).Int()); l >= 0 {
			return l
		}
	}
	return minLocation(m)
}

// An issue is an unsupported construct found before compiling.
type issue struct {
	loc int
	msg string
}

// rejectUnsupported reports the first (by position) construct of the
// statement that cdcq cannot maintain incrementally.
func (c *compiler) rejectUnsupported(s *pg.SelectStmt, stmtLoc int) error {
	if s.Op != pg.SetOperation_SETOP_NONE && s.Op != pg.SetOperation_SET_OPERATION_UNDEFINED {
		word := strings.TrimPrefix(s.Op.String(), "SETOP_")
		loc := c.keywordAfter(stmtLoc, -1, pg.Token_UNION, pg.Token_INTERSECT, pg.Token_EXCEPT)
		return c.errAt(loc, "%s is not supported: a cached query is a single SELECT", word)
	}
	var issues []issue
	add := func(loc int, format string, args ...any) {
		issues = append(issues, issue{loc, fmt.Sprintf(format, args...)})
	}
	if s.WithClause != nil {
		add(int(s.WithClause.Location), "WITH (common table expressions) is not supported")
	}
	if len(s.ValuesLists) > 0 {
		add(stmtLoc, "VALUES is not supported: a cached query reads tables")
	}
	if s.IntoClause != nil {
		add(c.keywordAfter(stmtLoc, -1, pg.Token_INTO), "SELECT INTO is not supported")
	}
	if len(s.DistinctClause) > 0 {
		loc := c.keywordAfter(stmtLoc, -1, pg.Token_DISTINCT)
		if len(s.DistinctClause) == 1 && nodeMessage(s.DistinctClause[0]) == nil {
			add(loc, "SELECT DISTINCT is not supported: use GROUP BY")
		} else {
			add(loc, "DISTINCT ON is not supported")
		}
	}
	if len(s.WindowClause) > 0 {
		add(c.keywordAfter(stmtLoc, -1, pg.Token_WINDOW), "window functions are not supported (WINDOW clause)")
	}
	if len(s.LockingClause) > 0 {
		add(c.keywordAfter(stmtLoc, -1, pg.Token_FOR), "FOR UPDATE and FOR SHARE are not supported")
	}
	if s.LimitCount != nil {
		loc := c.keywordAfter(stmtLoc, -1, pg.Token_LIMIT, pg.Token_FETCH)
		if l := nodeLoc(s.LimitCount); l >= 0 {
			loc = c.keywordBefore(l+1, pg.Token_LIMIT, pg.Token_FETCH)
		}
		add(loc, "LIMIT is not supported: which rows it keeps changes with every change to the others; read the whole result and limit it when reading")
	} else if s.LimitOption == pg.LimitOption_LIMIT_OPTION_COUNT || s.LimitOption == pg.LimitOption_LIMIT_OPTION_WITH_TIES {
		add(c.keywordAfter(stmtLoc, -1, pg.Token_LIMIT, pg.Token_FETCH), "LIMIT is not supported")
	}
	if s.LimitOffset != nil {
		loc := c.keywordAfter(stmtLoc, -1, pg.Token_OFFSET)
		if l := nodeLoc(s.LimitOffset); l >= 0 {
			loc = c.keywordBefore(l+1, pg.Token_OFFSET)
		}
		add(loc, "OFFSET is not supported: which rows it skips changes with every change to the others")
	}
	var parts []*pg.Node
	parts = append(parts, s.TargetList...)
	parts = append(parts, s.FromClause...)
	parts = append(parts, s.WhereClause)
	parts = append(parts, s.GroupClause...)
	parts = append(parts, s.HavingClause)
	parts = append(parts, s.SortClause...)
	for _, p := range parts {
		walk(p, func(m proto.Message) bool {
			switch m := m.(type) {
			case *pg.SubLink:
				add(int(m.Location), "subqueries are not supported")
				return false
			case *pg.RangeSubselect:
				add(c.openParenBefore(minLocation(m)), "subqueries in FROM are not supported")
				return false
			case *pg.RangeFunction:
				add(minLocation(m), "functions in FROM are not supported")
				return false
			case *pg.RangeTableSample:
				add(minLocation(m), "TABLESAMPLE is not supported")
				return false
			case *pg.RangeTableFunc, *pg.JsonTable:
				add(minLocation(m), "table functions in FROM are not supported")
				return false
			case *pg.FuncCall:
				if m.Over != nil {
					add(int(m.Location), "window functions are not supported: %s(...) OVER", funcName(m.Funcname))
					return false
				}
			case *pg.ParamRef:
				add(int(m.Location), "query parameters ($%d) are not supported: write the value", m.Number)
			case *pg.GroupingSet:
				add(int(m.Location), "GROUPING SETS, ROLLUP and CUBE are not supported")
				return false
			case *pg.GroupingFunc:
				add(int(m.Location), "GROUPING() is not supported")
			}
			return true
		})
	}
	if len(issues) == 0 {
		return nil
	}
	first := issues[0]
	for _, is := range issues[1:] {
		if is.loc >= 0 && (first.loc < 0 || is.loc < first.loc) {
			first = is
		}
	}
	return c.errAt(first.loc, "%s", first.msg)
}

// openParenBefore returns the offset of the "(" that opens the subquery
// whose first inner location is loc.
func (c *compiler) openParenBefore(loc int) int {
	if l := c.keywordBefore(loc, pg.Token_ASCII_40); l >= 0 {
		return l
	}
	return loc
}

// aggregateNames are the aggregates cdcq maintains.
var aggregateNames = map[string]AggFunc{"count": Count, "sum": Sum, "avg": Avg, "min": Min, "max": Max}

// otherAggregates are PostgreSQL aggregates cdcq does not maintain.
var otherAggregates = map[string]bool{
	"array_agg": true, "string_agg": true, "bool_and": true, "bool_or": true, "every": true,
	"bit_and": true, "bit_or": true, "bit_xor": true, "json_agg": true, "jsonb_agg": true,
	"json_object_agg": true, "jsonb_object_agg": true, "json_agg_strict": true, "jsonb_agg_strict": true,
	"stddev": true, "stddev_pop": true, "stddev_samp": true, "variance": true, "var_pop": true, "var_samp": true,
	"covar_pop": true, "covar_samp": true, "corr": true, "regr_avgx": true, "regr_avgy": true,
	"regr_count": true, "regr_intercept": true, "regr_r2": true, "regr_slope": true, "regr_sxx": true,
	"regr_sxy": true, "regr_syy": true, "percentile_cont": true, "percentile_disc": true, "mode": true,
	"rank": false, "xmlagg": true, "any_value": true, "range_agg": true, "range_intersect_agg": true,
}

// isAggregateCall reports whether a function call is an aggregate (one cdcq
// maintains or not).
func isAggregateCall(fc *pg.FuncCall) bool {
	if fc.Over != nil {
		return false
	}
	name, ok := catalogName(fc.Funcname)
	if !ok {
		return false
	}
	_, known := aggregateNames[name]
	return known || otherAggregates[name] || fc.AggStar || fc.AggWithinGroup
}

// isAggregateQuery reports whether the statement aggregates: it has GROUP
// BY or HAVING, or an aggregate call in its select list or ORDER BY.
func (c *compiler) isAggregateQuery(s *pg.SelectStmt) bool {
	if len(s.GroupClause) > 0 || s.HavingClause != nil {
		return true
	}
	var parts []*pg.Node
	parts = append(parts, s.TargetList...)
	parts = append(parts, s.SortClause...)
	for _, p := range parts {
		if c.containsAggregate(p) {
			return true
		}
	}
	return false
}

// containsAggregate reports whether an aggregate call occurs in n (outside
// subqueries). Answers are remembered per node, so that asking at every
// level of a deep expression stays linear.
func (c *compiler) containsAggregate(n *pg.Node) bool {
	if n == nil {
		return false
	}
	if v, ok := c.aggMemo[n]; ok {
		return v
	}
	v := c.messageHasAggregate(nodeMessage(n))
	c.aggMemo[n] = v
	return v
}

func (c *compiler) messageHasAggregate(m proto.Message) bool {
	switch m := m.(type) {
	case nil, *pg.SubLink:
		return false
	case *pg.FuncCall:
		if isAggregateCall(m) {
			return true
		}
	}
	found := false
	visit := func(pm protoreflect.Message) {
		if n, ok := pm.Interface().(*pg.Node); ok {
			found = c.containsAggregate(n)
		} else {
			found = c.messageHasAggregate(pm.Interface())
		}
	}
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Message() == nil, fd.IsMap():
		case fd.IsList():
			for l, i := v.List(), 0; i < l.Len() && !found; i++ {
				visit(l.Get(i).Message())
			}
		default:
			visit(v.Message())
		}
		return !found
	})
	return found
}

// catalogName returns the name of a function or type written either bare
// or qualified with pg_catalog; ok is false for other schemas.
func catalogName(names []*pg.Node) (string, bool) {
	switch len(names) {
	case 1:
		return names[0].GetString_().GetSval(), true
	case 2:
		if names[0].GetString_().GetSval() == "pg_catalog" {
			return names[1].GetString_().GetSval(), true
		}
	}
	return "", false
}

func funcName(names []*pg.Node) string {
	var parts []string
	for _, n := range names {
		parts = append(parts, n.GetString_().GetSval())
	}
	return strings.Join(parts, ".")
}

// fromItem compiles one item of the FROM clause and returns the indexes of
// the sources it brings in.
func (c *compiler) fromItem(n *pg.Node) ([]int, error) {
	switch m := nodeMessage(n).(type) {
	case *pg.RangeVar:
		i, err := c.addSource(m)
		if err != nil {
			return nil, err
		}
		return []int{i}, nil
	case *pg.JoinExpr:
		return c.joinExpr(m)
	case nil:
		return nil, c.errAt(0, "empty FROM item")
	default:
		return nil, c.errAt(nodeLoc(n), "this FROM item is not supported: name tables of the schema")
	}
}

func (c *compiler) addSource(rv *pg.RangeVar) (int, error) {
	var names []string
	if rv.Catalogname != "" {
		names = append(names, rv.Catalogname)
	}
	if rv.Schemaname != "" {
		names = append(names, rv.Schemaname)
	}
	names = append(names, rv.Relname)
	parts := c.identParts(int(rv.Location), names)
	if rv.Catalogname != "" {
		return 0, c.errAt(parts[0].loc, "cross-database references are not supported: %s", joinIdents(parts))
	}
	t, err := c.resolveTable(parts)
	if err != nil {
		return 0, err
	}
	nameLoc := parts[len(parts)-1].loc
	if t.IsView {
		return 0, c.errAt(nameLoc, "%s is a view: change data capture reads tables only", t.QualifiedName())
	}
	if len(t.PrimaryKey) == 0 {
		return 0, c.errAt(nameLoc, "table %s has no primary key (@id or @@id): change data capture needs one to tell rows apart", t.QualifiedName())
	}
	s := &source{table: t, schema: tableSchema(t), loc: nameLoc, alias: t.Name, used: map[string]bool{}, joinLoc: -1}
	if rv.Alias != nil {
		if len(rv.Alias.Colnames) > 0 {
			return 0, c.errAt(nameLoc, "column aliases in FROM (%s(...)) are not supported", rv.Alias.Aliasname)
		}
		s.alias, s.explicitAlias = rv.Alias.Aliasname, true
	}
	for _, o := range c.sources {
		if o.alias == s.alias {
			loc := nameLoc
			if s.explicitAlias {
				if l := c.aliasLoc(nameLoc, s.alias); l >= 0 {
					loc = l
				}
			}
			return 0, c.errAt(loc, "table name %q specified more than once: give each reference its own alias", s.alias)
		}
	}
	for _, k := range t.PrimaryKey {
		s.used[k] = true
	}
	c.sources = append(c.sources, s)
	return len(c.sources) - 1, nil
}

// aliasLoc finds the alias token after a table name, or -1.
func (c *compiler) aliasLoc(after int, alias string) int {
	for _, t := range c.tokens {
		if int(t.Start) <= after {
			continue
		}
		text := c.src[t.Start:t.End]
		if text == alias || strings.EqualFold(text, alias) || text == `"`+alias+`"` {
			return int(t.Start)
		}
	}
	return -1
}

func (c *compiler) joinExpr(j *pg.JoinExpr) ([]int, error) {
	left, err := c.fromItem(j.Larg)
	if err != nil {
		return nil, err
	}
	right, err := c.fromItem(j.Rarg)
	if err != nil {
		return nil, err
	}
	rloc := minLocation(nodeMessage(j.Rarg))
	if j.Jointype != pg.JoinType_JOIN_INNER {
		word := map[pg.JoinType]string{pg.JoinType_JOIN_LEFT: "LEFT", pg.JoinType_JOIN_RIGHT: "RIGHT", pg.JoinType_JOIN_FULL: "FULL"}[j.Jointype]
		loc := c.keywordBefore(rloc, pg.Token_LEFT, pg.Token_RIGHT, pg.Token_FULL)
		if word == "" {
			word = "this"
			loc = c.keywordBefore(rloc, pg.Token_JOIN)
		}
		return nil, c.errAt(loc, "%s JOIN is not supported: only inner joins (JOIN ... ON a.x = b.y) can be maintained", word)
	}
	if j.IsNatural {
		return nil, c.errAt(c.keywordBefore(rloc, pg.Token_NATURAL), "NATURAL JOIN is not supported: write JOIN ... ON or USING")
	}
	if j.Alias != nil {
		return nil, c.errAt(rloc, "an alias for a join (... ) AS %s is not supported", j.Alias.Aliasname)
	}
	all := append(append([]int(nil), left...), right...)
	visible := make([]bool, len(c.sources))
	for _, i := range all {
		visible[i] = true
	}
	if len(j.UsingClause) > 0 {
		usingLoc := c.keywordBefore(rloc+1, pg.Token_USING)
		if usingLoc < 0 {
			usingLoc = c.keywordAfter(rloc, -1, pg.Token_USING)
		}
		for _, u := range j.UsingClause {
			name := u.GetString_().GetSval()
			if err := c.usingColumn(name, left, right, usingLoc); err != nil {
				return nil, err
			}
		}
	}
	if j.Quals != nil {
		qloc := minLocation(nodeMessage(j.Quals))
		for _, i := range right {
			if c.sources[i].joinLoc < 0 {
				c.sources[i].joinLoc = qloc
			}
		}
		c.clause = "JOIN condition"
		if err := c.conditions(j.Quals, ctx{visible: visible}, c.clause); err != nil {
			return nil, err
		}
	}
	return all, nil
}

// usingColumn adds the equality JOIN ... USING (name) means.
func (c *compiler) usingColumn(name string, left, right []int, loc int) error {
	id := ident{text: name, quoted: name != strings.ToLower(name), loc: loc}
	find := func(side []int, what string) (int, *prismaschema.Column, error) {
		si, col := -1, (*prismaschema.Column)(nil)
		for _, i := range side {
			if m := columnMatches(c.sources[i].table, id); len(m) == 1 {
				if si >= 0 {
					return 0, nil, c.errAt(loc, "common column name %q appears more than once in the %s side of the join", name, what)
				}
				si, col = i, m[0]
			}
		}
		if si < 0 {
			return 0, nil, c.errAt(loc, "column %q named in USING does not exist in the %s side of the join", name, what)
		}
		return si, col, nil
	}
	ls, lcol, err := find(left, "left")
	if err != nil {
		return err
	}
	rs, rcol, err := find(right, "right")
	if err != nil {
		return err
	}
	l, err := c.columnRef(ls, lcol, loc)
	if err != nil {
		return err
	}
	r, err := c.columnRef(rs, rcol, loc)
	if err != nil {
		return err
	}
	if err := c.addJoin(l, r, loc); err != nil {
		return err
	}
	// Merge the two columns (and what they were merged with) into one.
	group, ok := c.merged[colKey{ls, lcol.Name}]
	if !ok {
		group = len(c.merged) + 1
		c.merged[colKey{ls, lcol.Name}] = group
	}
	if old, ok := c.merged[colKey{rs, rcol.Name}]; ok {
		for k, g := range c.merged {
			if g == old {
				c.merged[k] = group
			}
		}
	}
	c.merged[colKey{rs, rcol.Name}] = group
	return nil
}

// addJoin records an equality between columns of two sources.
func (c *compiler) addJoin(l, r *ColumnRef, loc int) error {
	if _, reason := commonType(l.Type, r.Type); reason != "" {
		return c.errAt(loc, "cannot join %s (%s) with %s (%s): %s", c.refName(l), l.Type, c.refName(r), r.Type, reason)
	}
	if !hasEquality(l.Type) {
		return c.errAt(loc, "cannot join on %s: type %s has no equality operator", c.refName(l), l.Type)
	}
	if l.Source > r.Source {
		l, r = r, l
	}
	j := Join{Left: l, Right: r}
	for _, o := range c.joins {
		if reflect.DeepEqual(o, j) {
			return nil
		}
	}
	c.joins = append(c.joins, j)
	return nil
}

func (c *compiler) refName(r *ColumnRef) string {
	return c.sources[r.Source].alias + "." + r.Column
}

// where compiles the WHERE clause into join equalities and filters.
func (c *compiler) where(n *pg.Node) error {
	c.clause = "WHERE"
	return c.conditions(n, ctx{}, c.clause)
}

// conditions splits a condition at its ANDs; equalities between columns of
// two sources become joins, the rest filters. what names the clause or
// operator n is an argument of, for messages.
func (c *compiler) conditions(n *pg.Node, cx ctx, what string) error {
	if b := n.GetBoolExpr(); b != nil && b.Boolop == pg.BoolExprType_AND_EXPR {
		for _, a := range b.Args {
			if err := c.conditions(a, cx, "AND"); err != nil {
				return err
			}
		}
		return nil
	}
	if a := n.GetAExpr(); a != nil && a.Kind == pg.A_Expr_Kind_AEXPR_OP && a.Lexpr.GetColumnRef() != nil && a.Rexpr.GetColumnRef() != nil {
		if op, _ := catalogName(a.Name); op == "=" {
			l, err := c.expr(a.Lexpr, cx)
			if err != nil {
				return err
			}
			r, err := c.expr(a.Rexpr, cx)
			if err != nil {
				return err
			}
			lc, lok := l.(*ColumnRef)
			rc, rok := r.(*ColumnRef)
			if lok && rok && lc.Source != rc.Source {
				return c.addJoin(lc, rc, int(a.Location))
			}
		}
	}
	e, err := c.expr(n, cx)
	if err != nil {
		return err
	}
	if e, err = c.asBool(e, what, nodeLoc(n)); err != nil {
		return err
	}
	c.filters = append(c.filters, e)
	return nil
}

// condition compiles a boolean condition.
func (c *compiler) condition(n *pg.Node, cx ctx) (Expr, error) {
	e, err := c.expr(n, cx)
	if err != nil {
		return nil, err
	}
	return c.asBool(e, c.clause, nodeLoc(n))
}

// checkConnected makes sure the join equalities connect every source:
// anything else would be a cross join.
func (c *compiler) checkConnected() error {
	parent := make([]int, len(c.sources))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	for _, j := range c.joins {
		parent[find(j.Left.Source)] = find(j.Right.Source)
	}
	for i := 1; i < len(c.sources); i++ {
		if find(i) == find(0) {
			continue
		}
		s := c.sources[i]
		if s.joinLoc >= 0 {
			return c.errAt(s.joinLoc, "the join condition of %s has no equality between a column of %s and a column of the other tables: only equi-joins (a.x = b.y) can be maintained", s.alias, s.alias)
		}
		return c.errAt(s.loc, "table %s is not joined to the others by an equality: a cross join cannot be maintained; add a condition such as %s.x = other.y", s.describe(), s.alias)
	}
	return nil
}

// groupClause compiles GROUP BY. Each item is an expression over the input
// columns, the name of an output column, or an output column's position.
func (c *compiler) groupClause(s *pg.SelectStmt) error {
	c.clause = "GROUP BY"
	for _, g := range s.GroupClause {
		n := g
		if k := g.GetAConst(); k != nil && k.GetIval() != nil {
			pos := int(k.GetIval().GetIval())
			if pos < 1 || pos > len(s.TargetList) {
				return c.errAt(nodeLoc(g), "GROUP BY position %d is not in the select list", pos)
			}
			n = s.TargetList[pos-1].GetResTarget().GetVal()
		} else if cr := g.GetColumnRef(); cr != nil && len(cr.Fields) == 1 && cr.Fields[0].GetString_() != nil {
			name := cr.Fields[0].GetString_().Sval
			parts := c.identParts(int(cr.Location), []string{name})
			if _, _, err := c.resolveColumn(parts, nil); err != nil {
				if t := c.targetNamed(s, name); t != nil {
					n = t
				}
			}
		}
		if c.containsAggregate(n) {
			return c.errAt(c.aggregateLoc(n), "aggregate functions are not allowed in GROUP BY")
		}
		e, err := c.expr(n, ctx{})
		if err != nil {
			return err
		}
		e = c.finish(e)
		if c.groupIndex(e) < 0 {
			c.groupBy = append(c.groupBy, e)
		}
	}
	return nil
}

// aggregateLoc returns the location of the first aggregate call in n.
func (c *compiler) aggregateLoc(n *pg.Node) int {
	loc := -1
	walk(n, func(m proto.Message) bool {
		if fc, ok := m.(*pg.FuncCall); ok && loc < 0 && isAggregateCall(fc) {
			loc = int(fc.Location)
		}
		return loc < 0
	})
	return loc
}

// targetNamed returns the expression of the output column named name.
func (c *compiler) targetNamed(s *pg.SelectStmt, name string) *pg.Node {
	for _, t := range s.TargetList {
		if rt := t.GetResTarget(); rt != nil && rt.Name == name {
			return rt.Val
		}
	}
	return nil
}

// groupIndex returns the index of the group key equal to e, or -1.
func (c *compiler) groupIndex(e Expr) int {
	for i, g := range c.groupBy {
		if reflect.DeepEqual(g, e) {
			return i
		}
	}
	return -1
}

func (c *compiler) selectList(s *pg.SelectStmt, plan *Plan) error {
	c.clause = "SELECT"
	seen := map[string]int{}
	for _, t := range s.TargetList {
		rt := t.GetResTarget()
		if rt == nil {
			return c.errAt(nodeLoc(t), "unsupported select list item")
		}
		if cr := rt.Val.GetColumnRef(); cr != nil && cr.Fields[len(cr.Fields)-1].GetAStar() != nil {
			return c.errAt(int(cr.Location), "SELECT * is not supported: list the grouping columns and aggregates")
		}
		e, err := c.expr(rt.Val, ctx{grouped: true})
		if err != nil {
			return err
		}
		e = c.finish(e)
		name := rt.Name
		if name == "" {
			name = c.columnName(rt.Val)
		}
		if _, dup := seen[name]; dup {
			return c.errAt(int(rt.Location), "two output columns are named %q: give them different names with AS", name)
		}
		seen[name] = len(plan.Outputs)
		plan.Outputs = append(plan.Outputs, Output{Name: name, Expr: e, Type: e.ResultType()})
	}
	return nil
}

// columnName is the name PostgreSQL gives an output column without alias.
func (c *compiler) columnName(n *pg.Node) string {
	name, _ := c.figureName(n)
	if name == "" {
		return "?column?"
	}
	return name
}

// figureName follows PostgreSQL's FigureColname: strength 2 for names that
// come from columns and functions, 1 for fallbacks such as a type name.
func (c *compiler) figureName(n *pg.Node) (string, int) {
	switch m := nodeMessage(n).(type) {
	case *pg.ColumnRef:
		last := m.Fields[len(m.Fields)-1].GetString_().GetSval()
		var names []string
		for _, f := range m.Fields {
			names = append(names, f.GetString_().GetSval())
		}
		if _, col, err := c.resolveColumn(c.identParts(int(m.Location), names), nil); err == nil {
			return col.Name, 2
		}
		return last, 2
	case *pg.FuncCall:
		return m.Funcname[len(m.Funcname)-1].GetString_().GetSval(), 2
	case *pg.A_Expr:
		if m.Kind == pg.A_Expr_Kind_AEXPR_NULLIF {
			return "nullif", 2
		}
	case *pg.TypeCast:
		if name, strength := c.figureName(m.Arg); strength > 1 {
			return name, strength
		}
		if tn := m.TypeName; tn != nil && len(tn.Names) > 0 {
			return tn.Names[len(tn.Names)-1].GetString_().GetSval(), 1
		}
	case *pg.CaseExpr:
		if name, strength := c.figureName(m.Defresult); strength > 1 {
			return name, strength
		}
		return "case", 1
	case *pg.CoalesceExpr:
		return "coalesce", 2
	case *pg.MinMaxExpr:
		if m.Op == pg.MinMaxOp_IS_GREATEST {
			return "greatest", 2
		}
		return "least", 2
	}
	return "", 0
}

func (c *compiler) orderBy(s *pg.SelectStmt, plan *Plan) error {
	c.clause = "ORDER BY"
	for _, n := range s.SortClause {
		sb := n.GetSortBy()
		if sb == nil {
			return c.errAt(nodeLoc(n), "unsupported ORDER BY item")
		}
		if sb.SortbyDir == pg.SortByDir_SORTBY_USING {
			return c.errAt(nodeLoc(sb.Node), "ORDER BY ... USING is not supported")
		}
		key := SortKey{Desc: sb.SortbyDir == pg.SortByDir_SORTBY_DESC}
		switch sb.SortbyNulls {
		case pg.SortByNulls_SORTBY_NULLS_FIRST:
			key.NullsFirst = true
		case pg.SortByNulls_SORTBY_NULLS_LAST:
		default:
			key.NullsFirst = key.Desc
		}
		if k := sb.Node.GetAConst(); k != nil && k.GetIval() != nil {
			pos := int(k.GetIval().GetIval())
			if pos < 1 || pos > len(plan.Outputs) {
				return c.errAt(nodeLoc(sb.Node), "ORDER BY position %d is not in the select list", pos)
			}
			key.Expr = plan.Outputs[pos-1].Expr
		} else if cr := sb.Node.GetColumnRef(); cr != nil && len(cr.Fields) == 1 && cr.Fields[0].GetString_() != nil {
			name := cr.Fields[0].GetString_().Sval
			for _, o := range plan.Outputs {
				if o.Name == name {
					key.Expr = o.Expr
					break
				}
			}
		}
		if key.Expr == nil {
			e, err := c.expr(sb.Node, ctx{grouped: true})
			if err != nil {
				return err
			}
			key.Expr = c.finish(e)
		}
		plan.OrderBy = append(plan.OrderBy, key)
	}
	return nil
}

// planSources builds the plan's sources with the columns the query used.
func (c *compiler) planSources() []Source {
	out := make([]Source, len(c.sources))
	for i, s := range c.sources {
		src := Source{
			Alias:      s.alias,
			Table:      s.table,
			Schema:     s.schema,
			Name:       s.table.Name,
			Topic:      s.schema + "." + s.table.Name,
			PrimaryKey: append([]string(nil), s.table.PrimaryKey...),
		}
		key := map[string]bool{}
		for _, k := range s.table.PrimaryKey {
			key[k] = true
		}
		for _, col := range s.table.Columns {
			if !s.used[col.Name] {
				continue
			}
			t, _ := ColumnType(c.schema, col) // checked when the column was used
			src.Columns = append(src.Columns, SourceColumn{Name: col.Name, Type: t, Nullable: col.Optional, Key: key[col.Name]})
		}
		out[i] = src
	}
	return out
}
