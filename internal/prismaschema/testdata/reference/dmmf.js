// Reads [{"name": ..., "text": ...}, ...] on stdin, asks Prisma's own schema
// parser for the DMMF of each schema, and writes one result per schema on
// stdout: {"name", "error"} or {"name", "models", "enums", "types"}.
// Used by reference_test.go; one process serves every schema.
'use strict';

const wasm = require('@prisma/prisma-schema-wasm');

function field(f) {
  return {
    name: f.name,
    dbName: f.dbName ?? null,
    kind: f.kind,
    type: f.type,
    isList: f.isList,
    isRequired: f.isRequired,
    isUnique: f.isUnique,
    isId: f.isId,
    isUpdatedAt: f.isUpdatedAt ?? false,
    hasDefaultValue: f.hasDefaultValue,
    default: f.default === undefined ? null : f.default,
    nativeType: f.nativeType ?? null,
    documentation: f.documentation ?? null,
    relationName: f.relationName ?? null,
    relationFromFields: f.relationFromFields ?? null,
    relationToFields: f.relationToFields ?? null,
    relationOnDelete: f.relationOnDelete ?? null,
    relationOnUpdate: f.relationOnUpdate ?? null,
  };
}

function model(m) {
  return {
    name: m.name,
    dbName: m.dbName ?? null,
    schema: m.schema ?? null,
    documentation: m.documentation ?? null,
    primaryKey: m.primaryKey ? m.primaryKey.fields : null,
    uniqueFields: m.uniqueFields ?? [],
    fields: (m.fields ?? []).map(field),
  };
}

function enumOf(e) {
  return {
    name: e.name,
    dbName: e.dbName ?? null,
    documentation: e.documentation ?? null,
    values: e.values.map((v) => ({ name: v.name, dbName: v.dbName ?? null, documentation: v.documentation ?? null })),
  };
}

function plain(message) {
  // The wasm error is JSON with an ANSI-coloured message; keep the text.
  try {
    message = JSON.parse(message).message;
  } catch (_) {
    // not JSON: keep as is
  }
  return String(message).replace(/\u001b\[[0-9;]*m/g, '');
}

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const results = JSON.parse(input).map(({ name, text }) => {
    try {
      const dmmf = JSON.parse(wasm.get_dmmf(JSON.stringify({ prismaSchema: [[name, text]] })));
      const dm = dmmf.datamodel;
      return {
        name,
        models: dm.models.map(model),
        enums: dm.enums.map(enumOf),
        types: (dm.types ?? []).map(model),
      };
    } catch (e) {
      return { name, error: plain(e && e.message ? e.message : e) };
    }
  });
  process.stdout.write(JSON.stringify(results));
});
