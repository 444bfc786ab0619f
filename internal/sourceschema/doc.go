// Package sourceschema reads, from a source database's catalog, the tables
// a cached query reads, and checks them against the query's compiled plan
// (sqlplan.Plan, built from the user's Prisma schema).
//
// It answers two questions:
//
//   - CheckCreate, before a cached query starts: does the Prisma schema
//     describe the database, for the tables and columns the query reads
//     (names, types, nullability, primary keys)?
//   - CheckRunning, polled while the query runs: did a DDL change break
//     the query? Changes that keep every value's meaning (an added column
//     or table, a dropped or renamed column the query does not read, a
//     wider numeric, a longer varchar, integer to bigint) are not
//     reported.
//
// Read and Reread take the catalog snapshot both check; Reread also finds
// tables renamed since the previous snapshot, by their OID.
//
// # Type changes
//
// ALTER TABLE ... ALTER COLUMN ... TYPE rewrites the existing rows without
// a change event, so the engines keep the values they had. A change is
// compatible when every existing value keeps its meaning in the new type
// (old -> new):
//
//	smallint, integer, bigint among themselves   a narrowing ALTER succeeds only when the values fit
//	numeric(p,s) -> numeric(q,t), t >= s         and any numeric -> numeric without modifiers
//	text, varchar, varchar(n) among themselves   a shorter varchar fails on longer values
//	char(n) -> char(n)                           any other change pads or trims blanks
//	time types, precision p -> q, q >= p         a missing precision counts as 6
//	interval                                     the same or unrestricted fields, no smaller precision
//	the same enum, the same other type           an enum may gain values but not lose or rename one
//	arrays                                       stay arrays, of compatible elements
//
// Between two observations of the catalog an enum is known by its OID, so
// renaming the type is compatible; against the plan it is known by its
// schema and name. The plan's intervals carry no modifier (Prisma has
// none), so any interval column fits them.
//
// Everything else breaks the query: unconstrained numeric to numeric(p,s)
// and a smaller scale round values, timestamp <-> timestamptz shift them,
// real -> double precision changes their digits, json <-> jsonb and enum
// -> text change how they print or sort, and a change of kind (integer to
// numeric, integer to text) changes their type in the query.
//
// When Options.ExactTypes is set (the Flink engine, whose source tables
// declare the plan's types; see internal/flinksql), the database's type
// must also fit the type the engine declares for the plan's type: an
// integer no wider than the plan's, a numeric with no more integer digits
// and no larger scale than the DECIMAL the plan's numeric becomes, time
// types with no more fractional-second digits. A database type equal to
// the plan's is always accepted: what the engine's mapping of the plan's
// own type loses (numeric(65,30) as DECIMAL(38,16)) is known when the
// query is created.
//
// At create time the same rules compare the plan's type (old) with the
// database's (new): Prisma's String on a varchar(40) column and Int on a
// bigint column are accepted (the latter not with ExactTypes), String on
// an integer column is not.
//
// # Nullability
//
// A required Prisma field must be NOT NULL in the database; an optional
// field on a NOT NULL column is fine. Lists are exempt: Prisma creates
// list columns without NOT NULL, and its lists cannot be optional.
//
// # What is not detected
//
// A rewrite that keeps the column's type (ALTER ... TYPE numeric(12,2)
// USING total * 2) is invisible in the catalog, and so are changes that
// come and go between two polls.
//
// This package imports sqlplan, prismaschema and pgx only.
package sourceschema
