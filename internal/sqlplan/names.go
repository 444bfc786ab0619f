package sqlplan

import (
	"sort"
	"strings"
	"unicode/utf8"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/cdcq/cdcq/internal/prismaschema"
)

// An ident is one part of a possibly qualified name as the query writes it.
type ident struct {
	// text is the name as the parser gives it: folded to lower case when
	// unquoted, exact when quoted.
	text   string
	quoted bool
	loc    int // byte offset of the part
}

// identParts returns the parts of a qualified name that starts at byte
// offset loc, with the quoting and position of each part taken from the
// scanner's tokens. names are the parser's strings.
func (c *compiler) identParts(loc int, names []string) []ident {
	parts := make([]ident, len(names))
	for i, n := range names {
		parts[i] = ident{text: n, loc: loc}
	}
	i := c.tokenAt(loc)
	if i < 0 {
		return parts
	}
	for k := range parts {
		if k > 0 {
			i = c.nextToken(i)
			if i < 0 || c.tokens[i].Token != pg.Token_ASCII_46 { // "."
				return parts
			}
			i = c.nextToken(i)
			if i < 0 {
				return parts
			}
		}
		t := c.tokens[i]
		text := c.src[t.Start:t.End]
		parts[k].loc = int(t.Start)
		parts[k].quoted = strings.HasPrefix(text, `"`) || strings.HasPrefix(text, `U&"`) || strings.HasPrefix(text, `u&"`)
	}
	return parts
}

// tokenAt returns the index of the token starting at byte offset loc, or -1.
func (c *compiler) tokenAt(loc int) int {
	i := sort.Search(len(c.tokens), func(i int) bool { return int(c.tokens[i].Start) >= loc })
	if i < len(c.tokens) && int(c.tokens[i].Start) == loc {
		return i
	}
	return -1
}

// nextToken returns the index of the next token after i that is not a
// comment, or -1.
func (c *compiler) nextToken(i int) int {
	for i++; i < len(c.tokens); i++ {
		if k := c.tokens[i].Token; k != pg.Token_SQL_COMMENT && k != pg.Token_C_COMMENT {
			return i
		}
	}
	return -1
}

// firstTokenFrom returns the byte offset of the first non-comment token at
// or after loc, or loc.
func (c *compiler) firstTokenFrom(loc int) int {
	i := sort.Search(len(c.tokens), func(i int) bool { return int(c.tokens[i].Start) >= loc })
	for ; i < len(c.tokens); i++ {
		if k := c.tokens[i].Token; k != pg.Token_SQL_COMMENT && k != pg.Token_C_COMMENT {
			return int(c.tokens[i].Start)
		}
	}
	return loc
}

// keywordAfter returns the offset of the first token of one of kinds at
// or after from (and before to, when to >= 0), or -1.
func (c *compiler) keywordAfter(from, to int, kinds ...pg.Token) int {
	for _, t := range c.tokens {
		if int(t.Start) < from {
			continue
		}
		if to >= 0 && int(t.Start) >= to {
			break
		}
		for _, k := range kinds {
			if t.Token == k {
				return int(t.Start)
			}
		}
	}
	return -1
}

// keywordBefore returns the offset of the last token of one of kinds
// before loc, or -1.
func (c *compiler) keywordBefore(loc int, kinds ...pg.Token) int {
	found := -1
	for _, t := range c.tokens {
		if int(t.Start) >= loc {
			break
		}
		for _, k := range kinds {
			if t.Token == k {
				found = int(t.Start)
			}
		}
	}
	return found
}

// matchStep finds the items a name refers to, trying one rule after the
// other and stopping at the first that matches anything:
//
//	quoted:   database name exactly; Prisma name exactly
//	unquoted: database name equal to the lower-cased identifier (what
//	          PostgreSQL does); database name ignoring case; Prisma name
//	          ignoring case
func matchStep[T any](items []T, id ident, dbName, prismaName func(T) string) []T {
	var steps []func(T) bool
	if id.quoted {
		steps = []func(T) bool{
			func(it T) bool { return dbName(it) == id.text },
			func(it T) bool { p := prismaName(it); return p != "" && p == id.text },
		}
	} else {
		steps = []func(T) bool{
			func(it T) bool { return dbName(it) == id.text },
			func(it T) bool { return strings.EqualFold(dbName(it), id.text) },
			func(it T) bool { p := prismaName(it); return p != "" && strings.EqualFold(p, id.text) },
		}
	}
	for _, step := range steps {
		var found []T
		for _, it := range items {
			if step(it) {
				found = append(found, it)
			}
		}
		if len(found) > 0 {
			return found
		}
	}
	return nil
}

// tableSchema is the database schema of t, "public" when Prisma names none.
func tableSchema(t *prismaschema.Table) string {
	if t.Schema == "" {
		return "public"
	}
	return t.Schema
}

// schemaMatches reports whether a schema qualifier names schema.
func schemaMatches(id ident, schema string) bool {
	if id.quoted {
		return schema == id.text
	}
	return schema == id.text || strings.EqualFold(schema, id.text)
}

// resolveTable finds the table a FROM item names. parts holds the optional
// schema and the table name.
func (c *compiler) resolveTable(parts []ident) (*prismaschema.Table, error) {
	name := parts[len(parts)-1]
	candidates := c.schema.Tables
	if len(parts) == 2 {
		sch := parts[0]
		var in []*prismaschema.Table
		known := false
		for _, t := range c.schema.Tables {
			if schemaMatches(sch, tableSchema(t)) {
				known = true
				in = append(in, t)
			}
		}
		if !known {
			e := c.errAt(sch.loc, "unknown schema %q", sch.text)
			e.Suggestion = suggest(sch.text, c.schemaNames())
			return nil, e
		}
		candidates = in
	}
	found := matchStep(candidates, name,
		func(t *prismaschema.Table) string { return t.Name },
		func(t *prismaschema.Table) string { return t.ModelName })
	if len(found) > 1 {
		// Like the default search_path, an unqualified name prefers public.
		var public []*prismaschema.Table
		for _, t := range found {
			if tableSchema(t) == "public" {
				public = append(public, t)
			}
		}
		if len(public) == 1 && len(parts) == 1 {
			found = public
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		var names []string
		for _, t := range candidates {
			names = append(names, t.Name)
			if t.ModelName != "" {
				names = append(names, t.ModelName)
			}
		}
		e := c.errAt(name.loc, "unknown table %q", name.text)
		if len(parts) == 2 {
			e.Message += " in schema " + parts[0].text
		}
		e.Suggestion = suggest(name.text, names)
		return nil, e
	}
	var names []string
	for _, t := range found {
		names = append(names, strqq(t.QualifiedName()))
	}
	return nil, c.errAt(name.loc, "table name %q is ambiguous: it matches %s; write the exact name in double quotes, with its schema",
		name.text, strings.Join(names, " and "))
}

func (c *compiler) schemaNames() []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range c.schema.Tables {
		if s := tableSchema(t); !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// columnMatches finds the columns of t a name refers to.
func columnMatches(t *prismaschema.Table, id ident) []*prismaschema.Column {
	return matchStep(t.Columns, id,
		func(col *prismaschema.Column) string { return col.Name },
		func(col *prismaschema.Column) string { return col.FieldName })
}

// sourceByQualifier finds the source a column qualifier names: an alias,
// or, for a source without an alias, a name of its table. schema, when
// given, must be the table's schema.
func (c *compiler) sourceByQualifier(schema *ident, q ident, visible []bool) (int, error) {
	var exact, fold, byTable []int
	for i, s := range c.sources {
		if schema != nil && !schemaMatches(*schema, s.schema) {
			continue
		}
		switch {
		case s.alias == q.text:
			exact = append(exact, i)
		case !q.quoted && strings.EqualFold(s.alias, q.text):
			fold = append(fold, i)
		}
		if len(matchStep([]*prismaschema.Table{s.table}, q,
			func(t *prismaschema.Table) string { return t.Name },
			func(t *prismaschema.Table) string { return t.ModelName })) == 1 {
			byTable = append(byTable, i)
		}
	}
	var found []int
	switch {
	case len(exact) > 0:
		found = exact
	case len(fold) > 0:
		found = fold
	default:
		for _, i := range byTable {
			if !c.sources[i].explicitAlias {
				found = append(found, i)
			}
		}
		if len(found) == 0 && len(byTable) == 1 {
			s := c.sources[byTable[0]]
			e := c.errAt(q.loc, "invalid reference to table %s: the query calls it %q", q.text, s.alias)
			e.Suggestion = s.alias
			return -1, e
		}
	}
	switch len(found) {
	case 0:
		var aliases []string
		for _, s := range c.sources {
			aliases = append(aliases, s.alias)
		}
		e := c.errAt(q.loc, "missing FROM-clause entry for table %q", q.text)
		e.Suggestion = suggest(q.text, aliases)
		return -1, e
	case 1:
		i := found[0]
		if visible != nil && !visible[i] {
			return -1, c.errAt(q.loc, "table %q cannot be used in this JOIN condition: it is not part of the join", q.text)
		}
		return i, nil
	}
	return -1, c.errAt(q.loc, "table reference %q is ambiguous", q.text)
}

// A colKey names a column of a source.
type colKey struct {
	source int
	column string
}

// resolveColumn resolves the fields of a column reference to a source and
// a column of its table.
func (c *compiler) resolveColumn(parts []ident, visible []bool) (int, *prismaschema.Column, error) {
	name := parts[len(parts)-1]
	switch len(parts) {
	case 1:
		return c.resolveUnqualified(name, visible)
	case 2, 3:
		var schema *ident
		if len(parts) == 3 {
			schema = &parts[0]
		}
		q := parts[len(parts)-2]
		si, err := c.sourceByQualifier(schema, q, visible)
		if err != nil {
			return -1, nil, err
		}
		s := c.sources[si]
		found := columnMatches(s.table, name)
		switch len(found) {
		case 1:
			return si, found[0], nil
		case 0:
			e := c.errAt(name.loc, "unknown column %q in table %s", name.text, s.describe())
			// The column may be in another table of the query.
			for j, o := range c.sources {
				if j == si || visible != nil && !visible[j] {
					continue
				}
				if m := columnMatches(o.table, name); len(m) == 1 {
					e.Message += "; table " + o.describe() + " has it"
					e.Suggestion = o.alias + "." + m[0].Name
					return -1, nil, e
				}
			}
			e.Suggestion = suggest(name.text, columnNames(s.table))
			return -1, nil, e
		}
		return -1, nil, c.ambiguousColumn(name, s.table, found)
	}
	return -1, nil, c.errAt(parts[0].loc, "cross-database references are not supported: %s", joinIdents(parts))
}

func (c *compiler) resolveUnqualified(name ident, visible []bool) (int, *prismaschema.Column, error) {
	type hit struct {
		source int
		col    *prismaschema.Column
	}
	var items []hit
	for i, s := range c.sources {
		if visible != nil && !visible[i] {
			continue
		}
		for _, col := range s.table.Columns {
			items = append(items, hit{i, col})
		}
	}
	found := matchStep(items, name,
		func(h hit) string { return h.col.Name },
		func(h hit) string { return h.col.FieldName })
	if len(found) == 0 {
		var names []string
		for _, h := range items {
			names = append(names, h.col.Name, h.col.FieldName)
		}
		e := c.errAt(name.loc, "unknown column %q", name.text)
		if len(c.sources) == 1 {
			e.Message += " in table " + c.sources[0].describe()
		}
		if c.outputAliases[name.text] && c.clause != "" {
			e.Message += "; output column names (AS " + name.text + ") cannot be used in " + c.clause + ": repeat the expression"
			return -1, nil, e
		}
		e.Suggestion = suggest(name.text, names)
		return -1, nil, e
	}
	if len(found) == 1 {
		return found[0].source, found[0].col, nil
	}
	sources := map[int]bool{}
	for _, h := range found {
		sources[h.source] = true
	}
	if len(sources) == 1 {
		var cols []*prismaschema.Column
		for _, h := range found {
			cols = append(cols, h.col)
		}
		return -1, nil, c.ambiguousColumn(name, c.sources[found[0].source].table, cols)
	}
	// Columns merged by JOIN ... USING are one column.
	group := -1
	merged := true
	for _, h := range found {
		g, ok := c.merged[colKey{h.source, h.col.Name}]
		if !ok || group >= 0 && g != group {
			merged = false
			break
		}
		group = g
	}
	if merged {
		return found[0].source, found[0].col, nil
	}
	var where []string
	for _, h := range found {
		where = append(where, c.sources[h.source].alias+"."+h.col.Name)
	}
	e := c.errAt(name.loc, "column reference %q is ambiguous: it could be %s; qualify it", name.text, strings.Join(where, " or "))
	return -1, nil, e
}

func (c *compiler) ambiguousColumn(name ident, t *prismaschema.Table, cols []*prismaschema.Column) *Error {
	var names []string
	for _, col := range cols {
		names = append(names, strqq(col.Name))
	}
	return c.errAt(name.loc, "column name %q is ambiguous in table %s: it matches %s; write the exact name in double quotes",
		name.text, QuoteIdent(t.Name), strings.Join(names, " and "))
}

func columnNames(t *prismaschema.Table) []string {
	var names []string
	for _, col := range t.Columns {
		names = append(names, col.Name, col.FieldName)
	}
	return names
}

func joinIdents(parts []ident) string {
	var s []string
	for _, p := range parts {
		s = append(s, p.text)
	}
	return strings.Join(s, ".")
}

func strqq(s string) string { return `"` + s + `"` }

// suggest returns the candidate closest to name, ignoring case, when it is
// close enough to be a likely typo; "" otherwise. Ties go to the candidate
// listed first.
func suggest(name string, candidates []string) string {
	best, bestD := "", -1
	// One edit in every three characters; names of one or two characters
	// are too short to tell a typo from another name.
	limit := (utf8.RuneCountInString(name) + 2) / 3
	if limit < 2 && utf8.RuneCountInString(name) <= 2 {
		limit = 0
	}
	lname := strings.ToLower(name)
	for _, cand := range candidates {
		if cand == "" {
			continue
		}
		d := editDistance(lname, strings.ToLower(cand))
		if d <= limit && (bestD < 0 || d < bestD) {
			best, bestD = cand, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions of adjacent characters each
// cost one.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
