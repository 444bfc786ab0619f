// Package prismaschema parses Prisma schema files and derives the shape of the
// database they describe: tables (from models and views), their columns with
// database names, types and native types, primary keys, unique keys and
// indexes, enums, relations, and the join tables of implicit many-to-many
// relations.
//
// It owns the Prisma schema language for cdcq: the lexer, the parser into a
// syntax tree (ParseFile), and the semantic pass (Parse) that resolves field
// types, attributes such as @map, @@map, @@schema, @id and @@id, and reports
// errors with file, line and column like a compiler does.
//
// The parser follows Prisma's line-oriented grammar: one field, property,
// enum value or block attribute per line, attribute arguments on the line of
// the attribute. Both Prisma 6 datasources (with url = env("...")) and
// Prisma 7 datasources (without a url) are accepted.
//
// Columns count characters (runes), starting at 1; a tab counts as one.
//
// This package must not import other cdcq packages.
package prismaschema
