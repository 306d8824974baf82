// SPDX-License-Identifier: MIT
/*
 * Aggregates the SAMPLE lines of the benchmarks (stdin) into one BENCH line per figure (median,
 * p10, p90 over rounds) and the RATIO lines that compare evring with its yardsticks.
 * A filter: reads stdin, writes stdout; lines that are not SAMPLE lines are ignored.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GROUPS 256
#define FIELD 64

struct group {
	char workload[FIELD];
	char impl[FIELD];
	char unit[FIELD];
	char extra[256]; /* the other k=v fields of the first sample, passed through */
	long payload;
	double *v;
	size_t n, cap;
	double median, p10, p90;
};

static struct group groups[MAX_GROUPS];
static int nr_groups;

static void die(const char *msg, const char *arg)
{
	fprintf(stderr, "bench/report: %s%s\n", msg, arg ? arg : "");
	exit(1);
}

static struct group *find(const char *workload, const char *impl, long payload)
{
	for (int i = 0; i < nr_groups; i++)
		if (!strcmp(groups[i].workload, workload) && !strcmp(groups[i].impl, impl) &&
		    groups[i].payload == payload)
			return &groups[i];
	return NULL;
}

static void add(const char *workload, const char *impl, long payload, const char *unit,
		const char *extra, double v)
{
	struct group *g = find(workload, impl, payload);

	if (!g) {
		if (nr_groups == MAX_GROUPS)
			die("too many figures", NULL);
		g = &groups[nr_groups++];
		snprintf(g->workload, sizeof(g->workload), "%s", workload);
		snprintf(g->impl, sizeof(g->impl), "%s", impl);
		snprintf(g->unit, sizeof(g->unit), "%s", unit);
		snprintf(g->extra, sizeof(g->extra), "%s", extra);
		g->payload = payload;
	}
	if (g->n == g->cap) {
		g->cap = g->cap ? 2 * g->cap : 32;
		g->v = realloc(g->v, g->cap * sizeof(*g->v));
		if (!g->v)
			die("out of memory", NULL);
	}
	g->v[g->n++] = v;
}

/* SAMPLE workload=W impl=I payload=P round=R value=V unit=U [k=v ...] */
static void parse(char *line)
{
	char workload[FIELD] = "", impl[FIELD] = "", unit[FIELD] = "", extra[256] = "";
	long payload = -1;
	double value = -1;
	int have_value = 0;
	char *tok, *save;

	line[strcspn(line, "\n")] = 0;
	if (strncmp(line, "SAMPLE ", 7))
		return;
	for (tok = strtok_r(line + 7, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(tok, '=');

		if (!eq)
			continue;
		*eq = 0;
		if (!strcmp(tok, "workload")) {
			snprintf(workload, sizeof(workload), "%s", eq + 1);
		} else if (!strcmp(tok, "impl")) {
			snprintf(impl, sizeof(impl), "%s", eq + 1);
		} else if (!strcmp(tok, "payload")) {
			payload = strtol(eq + 1, NULL, 10);
		} else if (!strcmp(tok, "value")) {
			value = strtod(eq + 1, NULL);
			have_value = 1;
		} else if (!strcmp(tok, "unit")) {
			snprintf(unit, sizeof(unit), "%s", eq + 1);
		} else if (strcmp(tok, "round")) {
			size_t l = strlen(extra);

			snprintf(extra + l, sizeof(extra) - l, "%s%s=%s", l ? " " : "", tok,
				 eq + 1);
		}
	}
	if (!*workload || !*impl || !*unit || payload < 0 || !have_value)
		return;
	add(workload, impl, payload, unit, extra, value);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Linear interpolation between closest ranks, on sorted @v. */
static double quantile(const double *v, size_t n, double q)
{
	double pos = q * (double)(n - 1);
	size_t i = (size_t)pos;

	if (i + 1 >= n)
		return v[n - 1];
	return v[i] + (pos - (double)i) * (v[i + 1] - v[i]);
}

static int impl_rank(const char *impl)
{
	static const char *const order[] = { "evring",		 "evring-c11local",
					     "ideal",		 "memcpy-rec",
					     "evring-flight-pc", "evring-flight-ow" };

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if (!strcmp(impl, order[i]))
			return (int)i;
	return 100;
}

static int cmp_group(const void *a, const void *b)
{
	const struct group *x = a, *y = b;
	int c = strcmp(x->workload, y->workload);

	if (c)
		return c;
	if (x->payload != y->payload)
		return x->payload < y->payload ? -1 : 1;
	c = impl_rank(x->impl) - impl_rank(y->impl);
	return c ? c : strcmp(x->impl, y->impl);
}

/* Three significant digits or so, never an exponent. */
static void fmt(char *buf, size_t sz, double v)
{
	if (v < 10)
		snprintf(buf, sz, "%.3f", v);
	else if (v < 100)
		snprintf(buf, sz, "%.2f", v);
	else
		snprintf(buf, sz, "%.1f", v);
}

/* RATIO <workload> payload=P a/b=X (note), when both figures exist. */
static void ratio(const char *workload, long payload, const char *a, const char *b,
		  const char *note)
{
	struct group *ga = find(workload, a, payload), *gb = find(workload, b, payload);

	if (!ga || !gb || gb->median <= 0)
		return;
	printf("RATIO %s payload=%ld %s/%s=%.2f (%s)\n", workload, payload, a, b,
	       ga->median / gb->median, note);
}

int main(void)
{
	char line[1024];
	long payloads[64];
	int nr_payloads = 0;

	while (fgets(line, sizeof(line), stdin))
		parse(line);
	if (!nr_groups)
		die("no SAMPLE lines on stdin", NULL);
	qsort(groups, (size_t)nr_groups, sizeof(groups[0]), cmp_group);

	for (int i = 0; i < nr_groups; i++) {
		struct group *g = &groups[i];
		char med[32], p10[32], p90[32];
		int seen = 0;

		qsort(g->v, g->n, sizeof(*g->v), cmp_double);
		g->median = quantile(g->v, g->n, 0.5);
		g->p10 = quantile(g->v, g->n, 0.1);
		g->p90 = quantile(g->v, g->n, 0.9);
		fmt(med, sizeof(med), g->median);
		fmt(p10, sizeof(p10), g->p10);
		fmt(p90, sizeof(p90), g->p90);
		printf("BENCH workload=%s impl=%s payload=%ld value=%s unit=%s p10=%s p90=%s "
		       "rounds=%zu%s%s\n",
		       g->workload, g->impl, g->payload, med, g->unit, p10, p90, g->n,
		       *g->extra ? " " : "", g->extra);
		for (int j = 0; j < nr_payloads; j++)
			seen |= payloads[j] == g->payload;
		if (!seen && nr_payloads < 64)
			payloads[nr_payloads++] = g->payload;
	}

	/* groups are sorted by payload within a workload, so payloads[] is ascending per run */
	for (int j = 0; j < nr_payloads; j++)
		ratio("W1", payloads[j], "evring", "ideal", "target <= 1.25");
	for (int j = 0; j < nr_payloads; j++)
		ratio("W2", payloads[j], "evring", "ideal", "target >= 0.8");
	for (int j = 0; j < nr_payloads; j++) {
		ratio("W1", payloads[j], "evring-c11local", "ideal", "target <= 1.25");
		ratio("W1", payloads[j], "evring-c11local", "evring",
		      "local ops: > 1 means the unlocked x86 RMW is cheaper");
	}
	/* the flight recorder against the core ring of the same run */
	for (int j = 0; j < nr_payloads; j++) {
		ratio("W1", payloads[j], "evring-flight-pc", "evring", "target <= 1.3");
		ratio("W1", payloads[j], "evring-flight-ow", "evring", "target <= 1.3");
	}
	for (int j = 0; j < nr_payloads; j++)
		ratio("W2", payloads[j], "evring-flight-pc", "evring",
		      "produce/consume stream rate against the core ring's");
	/* W2 again with a reader that pauses when it finds nothing (BENCH_W2_PACED) */
	for (int j = 0; j < nr_payloads; j++)
		ratio("W2-paced", payloads[j], "evring", "ideal", "target >= 0.8");
	for (int j = 0; j < nr_payloads; j++)
		ratio("W2-paced", payloads[j], "evring-flight-pc", "evring",
		      "produce/consume stream rate against the core ring's");
	return 0;
}
