-- Every built-in type of PostgreSQL 15 with its edge values, nested and
-- arrayed, in tables whose every output the suites check against the
-- server's own (check_exact.c): JSON Lines against row_to_json, TSV and
-- CSV against COPY, binary getters against text getters. Values are
-- written in forms every DateStyle reads (ISO dates, explicit zones), so
-- that the corpus loads the same under any session settings.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS corpus CASCADE;
CREATE SCHEMA corpus;
SET search_path = corpus;

CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy "very"', 'a,b');
CREATE TYPE pair AS (x int, "y label" text);
CREATE TYPE nest AS (p pair, ts timestamptz, tags text[], r int4range,
                     "quote""d" numeric, m money, f float8);
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE DOMAIN stamp AS timestamptz;
CREATE DOMAIN pairdom AS pair;
CREATE DOMAIN intarr AS int[];
CREATE DOMAIN texty AS text;

-- Numbers at their ends.
CREATE TABLE numbers (id int, i2 int2, i4 int4, i8 int8, n numeric,
                      f4 float4, f8 float8, m money, o oid, x xid, x8 xid8,
                      c cid, t tid);
INSERT INTO numbers VALUES
 (1, -32768, -2147483648, -9223372036854775808, 'NaN', 'NaN', 'NaN',
  '-92233720368547758.08', 0, '0', '0', '0', '(0,0)'),
 (2, 32767, 2147483647, 9223372036854775807, 'Infinity', 'Infinity',
  'Infinity', '92233720368547758.07', 4294967295, '4294967295',
  '18446744073709551615', '4294967295', '(4294967295,65535)'),
 (3, 0, 0, 0, '-Infinity', '-Infinity', '-Infinity', 0, 1, '1', '1', '1',
  '(1,1)'),
 (4, -1, -1, -1, '-0.000000000000000000000000000001', '-0', '-0', '-0.01',
  NULL, NULL, NULL, NULL, NULL),
 (5, NULL, NULL, NULL, '123456789012345678901234567890.123456789', 1.17549435e-38,
  2.2250738585072014e-308, '1.5', NULL, NULL, NULL, NULL, NULL),
 (6, 1, 1, 1, '1e-100', 1.4e-45, 5e-324, NULL, NULL, NULL, NULL, NULL,
  NULL),
 (7, 2, 2, 2, '1e100', 3.4028235e38, 1.7976931348623157e308, NULL, NULL,
  NULL, NULL, NULL, NULL),
 (8, 3, 3, 3, '0.1', 0.1, 0.1, NULL, NULL, NULL, NULL, NULL, NULL),
 (9, 4, 4, 4, '100', 1e15, 1e15, NULL, NULL, NULL, NULL, NULL, NULL),
 (10, 5, 5, 5, '-1.50', 1e16, 1e16, NULL, NULL, NULL, NULL, NULL, NULL),
 (11, 6, 6, 6, '0', 123456.7, 1234567890123456.7, NULL, NULL, NULL, NULL,
  NULL, NULL),
 (12, 7, 7, 7, '0.0000', 0.0001, 0.0001, NULL, NULL, NULL, NULL, NULL,
  NULL),
 (13, 8, 8, 8, '5', 0.00001, 0.00001, NULL, NULL, NULL, NULL, NULL, NULL),
 (14, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL);

-- Strings and bytes, in columns whose names need quoting.
CREATE TABLE strings (id int, "a b" text, "say ""hi""" varchar(20),
                      U&"tab\0009here" char(5), nm name, ch "char", b bytea,
                      u uuid, j json, jb jsonb, jp jsonpath, x xml, bt bit(4),
                      vb varbit, tv tsvector, tq tsquery, md mood,
                      rc refcursor);
INSERT INTO strings VALUES
 (1, '', '', '', '', '', '', '00000000-0000-0000-0000-000000000000',
  '{}', '{}', '$', '', B'0000', B'', '', '', 'sad', ''),
 (2, E'tab\there\nnew\\line "q" \x01\x1f', 'a,b;c', 'ab', 'x y',
  'z', E'\\x00ff5c2c22', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '{"k": [1, "x", null], "k": 2}', '{"k": [1, "x", null], "b": 1.50}',
  '$.a[*] ? (@ > 1)', '<a x="1">t&amp;</a>', B'1010', B'101',
  'a fat cat:1A', 'fat & (rat | !cat)', 'happy "very"', 'cur'),
 (3, 'héllo wörld ✓ 日本語', '\.', 'é', 'ü', 'a', E'\\x', NULL,
  ' [1, 2.50, "s"] ', '"str"', 'strict $.x', NULL, B'1111',
  B'1010101010101', 'x:1 y:2', 'a:*', 'a,b', NULL),
 (4, 'NULL', '\N', NULL, NULL, NULL, decode('deadbeef', 'hex'), NULL,
  'null', 'null', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL);

-- Dates and times at their ends, BC and past 9999, in zones whose
-- offsets have seconds (America/New_York before 1883).
CREATE TABLE times (id int, d date, t time, ttz timetz, ts timestamp,
                    tstz timestamptz, iv interval);
INSERT INTO times VALUES
 (1, '2026-01-01', '00:00', '00:00+00', '2026-01-01 10:00:00',
  '2026-01-01 10:00:00+00', '0'),
 (2, 'infinity', '24:00', '23:59:59.999999+15:59', 'infinity', 'infinity',
  '178000000 years'),
 (3, '-infinity', '23:59:59.999999', '00:00-15:59', '-infinity',
  '-infinity', '-178000000 years'),
 (4, '4713-01-01 BC', '12:34:56.789', '12:34:56.789+05:30',
  '4713-01-01 00:00:00 BC', '4713-01-01 00:00:00+00 BC',
  '1 year 2 mons 3 days 04:05:06.789'),
 (5, '5874897-12-31', '01:02:03', '01:02:03-08', '294276-12-31 23:59:59.999999',
  '294276-12-31 23:59:59.999999+00', '-1 year -2 mons +3 days -04:05:06'),
 (6, '10000-01-01', '00:00:00.5', '00:00:00.5+01', '10000-01-01 00:00:00',
  '10000-01-01 00:00:00+00', '1 day -1 second'),
 (7, '0097-02-17 BC', '13:00', '13:00+05:53:28', '0097-02-17 01:32:01 BC',
  '0097-02-17 01:32:01+00 BC', '-0.000001 seconds'),
 (8, '1800-01-01', '06:00', '06:00-04:56:02', '1800-01-01 00:00:00',
  '1800-01-01 00:00:00 America/New_York', '3 days'),
 (9, '1999-12-31', '23:59:59', '23:59:59+14', '1999-12-31 23:59:59.123456',
  '1999-12-31 23:59:59.123456+05:30', '-3 mons'),
 (10, '2000-02-29', NULL, NULL, '2000-02-29 12:00:00',
  '1883-11-18 12:03:57 America/New_York', '1 mon 1 day 00:00:00.000001'),
 (11, NULL, NULL, NULL, NULL, '1970-01-01 00:00:00+00', '-1 days +1 hours'),
 (12, NULL, NULL, NULL, NULL, NULL, NULL);

-- Geometry, networks, system types.
CREATE TABLE shapes (id int, pt point, ln line, ls lseg, bx box, pa path,
                     pg polygon, ci circle, ip inet, cd cidr, mac macaddr,
                     mac8 macaddr8, lsn pg_lsn, rcl regclass, rty regtype,
                     rpr regproc, i2v int2vector, ov oidvector,
                     snap pg_snapshot);
INSERT INTO shapes VALUES
 (1, '(1.5,-2)', '{1,-1,0}', '[(0,0),(1e300,-1e-300)]', '((1,1),(0,0))',
  '[(0,0),(1,1),(2,0)]', '((0,0),(1,1),(2,0))', '<(0,0),1.5>',
  '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03',
  '08:00:2b:01:02:03:04:05', '16/B374D848', 'pg_class', 'integer',
  'now', '1 2 -3', '1 2 4294967295', '10:20:10,14,15'),
 (2, '(NaN,Infinity)', '{0,1,-Infinity}', NULL, '((-Infinity,0),(0,-1))',
  '((0,0),(1,1))', NULL, '<(1,2),0>', '::1', '2001:db8::/32', NULL, NULL,
  '0/0', NULL, 'timestamp with time zone[]', NULL, '', '', NULL),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL);

-- Arrays of every shape, ranges and multiranges, composites and
-- domains over all of them.
CREATE TABLE nested (id int, ai int[], at text[], an numeric[], af float8[],
                     ab bool[], ats timestamptz[], ad date[], aby bytea[],
                     abox box[], aj json[], ajb jsonb[], apair pair[],
                     arng int4range[], amood mood[], r4 int4range,
                     rn numrange, rts tsrange, rtz tstzrange, rd daterange,
                     r8 int8range, mr4 int4multirange, mrtz tstzmultirange,
                     p pair, ne nest, dp posint, ds stamp, dpair pairdom,
                     dai intarr, dt texty, aiv interval[], au uuid[],
                     "we,ird ""name""" text, U&"new\000Aline" int);
INSERT INTO nested VALUES
 (1, '{1,2,NULL}', '{"a b","c\"d",NULL,"NULL",""}', '{1.5,NaN,Infinity}',
  '{-0,1e-300,NaN,-Infinity}', '{t,f,NULL}',
  ARRAY['2026-01-01 10:00+02', 'infinity', '0097-02-17 01:32:01+00 BC',
        '10000-01-01 00:00+00']::timestamptz[],
  '{2026-01-01,infinity,-infinity}', '{"\\x00ff",NULL}',
  '{(1,1),(0,0);(2,2),(1,1)}', ARRAY['{"a": 1}', '[1, 2]', 'null']::json[],
  ARRAY['{"a": 1}', '"x"']::jsonb[],
  ARRAY[ROW(1, 'one')::pair, ROW(NULL, NULL)::pair, NULL],
  ARRAY['[1,5)', 'empty', '(,3]']::int4range[], '{sad,"a,b","happy \"very\""}',
  '[1,10)', '(1.5,2.5]', '[2026-01-01 10:00,infinity)',
  '[2026-01-01 10:00+00,2027-01-01 00:00+05:30)', '[2026-01-01,2026-02-01)',
  '[-9223372036854775808,9223372036854775807)', '{[1,3),[5,7)}',
  '{[2026-01-01 00:00+00,2026-01-02 00:00+00)}',
  ROW(1, E'x "y"\ttab'), ROW(ROW(2, 'two'), '2026-01-01 10:00+02',
  '{a,"b c"}', '[1,2)', 1.50, 12.34, 'NaN'), 7, '2026-01-01 10:00+02',
  ROW(3, 'three'), '{4,5}', 'dom', '{"1 day","-00:00:01"}',
  '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}', 'w', 1),
 (2, '[5:5]={7}', '[-2147483648:-2147483647]={"low","lower"}',
  '{{1,2},{3,4}}', '{{{1.5}}}', '{}', '{}', '{}', '{}', '{}', '{}', '{}',
  '{}', '{}', '{}', 'empty', 'empty', 'empty', 'empty', 'empty', 'empty',
  '{}', '{}', ROW(NULL, NULL), ROW(NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  NULL, 'infinity', ROW(NULL, NULL), '{}', '', '{}', '{}', '', NULL),
 (3, '[0:1][2:3]={{1,2},{3,4}}', '{{"{braces}","co,mma"},{"back\\\\slash","\""}}',
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  ARRAY[ROW(5, 'a,b')::pair], NULL, NULL, '(,)', '(,)', '(,)', '(,)',
  '(,)', '(,)', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL),
 (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
