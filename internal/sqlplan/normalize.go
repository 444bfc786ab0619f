package sqlplan

import (
	pg "github.com/pganalyze/pg_query_go/v6"
)

// Normalize returns the canonical text of a query: PostgreSQL's parse tree
// printed back by pg_query's deparser. Whitespace, comments, keyword case,
// the case of unquoted identifiers, redundant parentheses and a trailing
// semicolon do not change it; constants, quoted identifiers and anything
// else that changes the meaning do. Together with the environment and the
// schema it determines the query id (names.QueryID), so that creating the
// same query again finds the same id.
//
// Errors are *Error (a syntax error, or more than one statement).
func Normalize(sql string) (string, error) {
	tree, err := parseSQL(sql)
	if err != nil {
		return "", err
	}
	if len(tree.Stmts) > 1 {
		c := &compiler{src: sql}
		if scan, err := pg.Scan(sql); err == nil {
			c.tokens = scan.Tokens
		}
		return "", c.errAt(c.firstTokenFrom(int(tree.Stmts[1].StmtLocation)), "only one statement is allowed; a second one starts here")
	}
	out, err := pg.Deparse(tree)
	if err != nil {
		return "", errorAt(sql, 0, "cannot normalise the query: %v", err)
	}
	return out, nil
}
