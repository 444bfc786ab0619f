-- A database written by hand, before the application used Prisma;
-- legacy.prisma is what `prisma db pull` makes of it.

CREATE SCHEMA sales;

CREATE TYPE sales.invoice_state AS ENUM ('draft', 'sent', 'paid', 'void');

CREATE DOMAIN sales.positive_int AS integer CHECK (VALUE > 0);

CREATE DOMAIN sales.amount AS numeric(14, 4);

CREATE TABLE sales.invoices (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number         varchar(40) NOT NULL UNIQUE,
    state          sales.invoice_state NOT NULL DEFAULT 'draft',
    net            numeric NOT NULL,
    tax            numeric(10, 3),
    gross          sales.amount,
    lines          sales.positive_int NOT NULL,
    issued_on      date NOT NULL,
    issued_at      timestamptz NOT NULL DEFAULT now(),
    due            time,
    created        timestamp NOT NULL DEFAULT now(),
    customer_code  char(8) NOT NULL,
    labels         varchar(20)[],
    meta           json,
    client_ip      inet,
    flags          bit(4),
    rate           real,
    priority       smallint NOT NULL DEFAULT 0,
    token          uuid NOT NULL,
    attachment     bytea
);

CREATE TABLE payments (
    invoice_id  bigint NOT NULL REFERENCES sales.invoices (id),
    seq         integer NOT NULL,
    amount      numeric(12, 2) NOT NULL,
    paid_at     timestamp(0) NOT NULL,
    method      text,
    PRIMARY KEY (invoice_id, seq)
);
