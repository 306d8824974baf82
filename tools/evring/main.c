// SPDX-License-Identifier: MIT
/*
 * evring(1): the command-line front end. One file per subcommand; this one dispatches and holds
 * the trivial ones (version, help). Single-threaded.
 */
#include <stdio.h>
#include <string.h>

#include "evring.h"

struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
};

static int cmd_version(int argc, char **argv)
{
	printf("evring %s\n", evr_version_string());
	return 0;
}

static int cmd_help(int argc, char **argv);
int cmd_dump(int argc, char **argv); /* dump.c */

static const struct cmd cmds[] = {
	{ "version", cmd_version, "print the library version" },
	{ "dump", cmd_dump, "[--ring N] [-o FILE] SESSION: records left in flight rings" },
	{ "help", cmd_help, "list the subcommands" },
};

static int cmd_help(int argc, char **argv)
{
	printf("usage: evring <command> [args]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		printf("  %-10s %s\n", cmds[i].name, cmds[i].help);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		cmd_help(0, NULL);
		return 2;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	if (!strcmp(argv[1], "--version"))
		return cmd_version(0, NULL);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return cmd_help(0, NULL);
	fprintf(stderr, "evring: unknown command '%s' (try 'evring help')\n", argv[1]);
	return 2;
}
