/* psql's printing options on the command line: -P NAME[=VALUE] as psql's
 * \pset takes them, for the formats pqstream prints as psql does
 * (unaligned and CSV). Options that only shape psql's aligned, wrapped or
 * HTML tables, or its pager, are accepted and have nothing to change;
 * ones that would change these formats in ways pqstream does not write
 * (expanded, title, numericlocale) are refused by name. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

/* psql's boolean words, or an unambiguous start of one; -1 if none. */
static int parse_bool(const char *v) {
  static const struct {
    const char *word;
    int value;
    size_t min; /* characters that make the start unambiguous */
  } words[] = {{"true", 1, 1}, {"false", 0, 1}, {"yes", 1, 1},
               {"no", 0, 1},   {"on", 1, 2},    {"off", 0, 2},
               {"1", 1, 1},    {"0", 0, 1}};
  size_t len = strlen(v);
  for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
    if (len >= words[i].min && len <= strlen(words[i].word) &&
        strncasecmp(v, words[i].word, len) == 0)
      return words[i].value;
  return -1;
}

/* A boolean setting: VALUE, or no value to toggle it, as psql's. */
static int set_bool(int *flag, const char *name, const char *value) {
  if (value == NULL) {
    *flag = !*flag;
    return CLI_OK;
  }
  int b = parse_bool(value);
  if (b < 0) {
    cli_say("-P %s: unrecognized value \"%s\": Boolean expected", name,
            value);
    return CLI_USAGE;
  }
  *flag = b;
  return CLI_OK;
}

static int set_format(cli_opts_t *o, const char *value) {
  size_t len = value ? strlen(value) : 0;
  if (len > 0 && strncasecmp(value, "unaligned", len) == 0)
    o->format = PQS_FORMAT_UNALIGNED;
  else if (len > 0 && strncasecmp(value, "csv", len) == 0)
    o->format = PQS_FORMAT_PSQL_CSV;
  else {
    cli_say("-P format=%s: pqstream prints unaligned or csv as psql does "
            "(or --format tsv, csv or jsonl)",
            value ? value : "");
    return CLI_USAGE;
  }
  o->format_given = 1;
  return CLI_OK;
}

/* The aligned formats' and the pager's: nothing to change here. */
static int for_tables_only(const char *name) {
  static const char *const names[] = {
      "border", "linestyle", "columns", "pager", "pager_min_lines",
      "tableattr", "unicode_border_linestyle", "unicode_column_linestyle",
      "unicode_header_linestyle", "xheader_width"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (strcmp(name, names[i]) == 0)
      return 1;
  return 0;
}

int cli_pset(cli_opts_t *o, char *arg) {
  pqs_print_opts_t *p = &o->print;
  char *value = strchr(arg, '=');
  if (value != NULL)
    *value++ = '\0';
  const char *name = arg;
  if (strcmp(name, "format") == 0)
    return set_format(o, value);
  if (strcmp(name, "null") == 0)
    p->null = value ? value : "";
  else if (strcmp(name, "fieldsep") == 0) {
    p->fieldsep = value ? value : "";
    p->fieldsep_zero = 0;
  } else if (strcmp(name, "recordsep") == 0) {
    p->recordsep = value ? value : "";
    p->recordsep_zero = 0;
  } else if (strcmp(name, "fieldsep_zero") == 0)
    p->fieldsep_zero = 1;
  else if (strcmp(name, "recordsep_zero") == 0)
    p->recordsep_zero = 1;
  else if (strcmp(name, "csv_fieldsep") == 0) {
    if (value == NULL || strlen(value) != 1 || strchr("\"\n\r", *value)) {
      cli_say("%s", "-P csv_fieldsep: must be a single one-byte character, "
                    "not a quote, newline or carriage return");
      return CLI_USAGE;
    }
    p->csv_fieldsep = *value;
  } else if (strcmp(name, "tuples_only") == 0 || strcmp(name, "t") == 0)
    return set_bool(&p->tuples_only, name, value);
  else if (strcmp(name, "footer") == 0) {
    int on = !p->no_footer;
    int rc = set_bool(&on, name, value);
    p->no_footer = !on;
    return rc;
  } else if (!for_tables_only(name)) {
    cli_say("-P %s: not an option pqstream prints by (it writes psql's "
            "unaligned and csv formats)",
            name);
    return CLI_USAGE;
  }
  return CLI_OK;
}
