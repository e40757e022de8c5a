/*
 * main.c - entry of the dsqlfs binary: admin subcommands, help, version.
 * Mounting (dsqlfs SOURCE MOUNTPOINT) is dispatched from here too.
 */
#include "admin.h"
#include "err.h"
#include "maint.h"
#include "mount.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: dsqlfs COMMAND [ARGS] [-o opt,...]\n"
            "\n"
            "Databases live under URL = file:///abs/dir/NAME or "
            "s3://BUCKET[/PREFIX]/NAME.\n"
            "\n"
            "commands:\n"
            "  init URL                     create an empty database\n"
            "  import FILE.db URL [--force] store a SQLite file as a new "
            "version\n"
            "  export URL FILE.db [--version N | --at TIME]\n"
            "                               write a version out as a SQLite "
            "file\n"
            "  versions URL [--tables]      list the versions (--tables: what "
            "each changed)\n"
            "  status URL                   show the newest version\n"
            "  verify URL                   check every object and checksum\n"
            "  hot URL                      write the pages a first query "
            "walks (hot.seg)\n"
            "  recovery-scan URL [--delete] [--grace SECONDS]\n"
            "                               find segments no manifest "
            "references\n"
            "  gc URL [--keep N] [--keep-for SECONDS] [--dry-run]\n"
            "                               remove old versions (default: "
            "keep 10 and a week)\n"
            "  restore URL --version N | --at TIME\n"
            "                               commit a new version with the "
            "content of an old one\n"
            "  fork SRC_URL[@vN|@TIME] DEST_URL\n"
            "                               a new database whose version 1 is "
            "SRC's version\n"
            "                               (same store: shares its objects)\n"
            "  maintain SOURCE [--dry-run]  one round of upkeep over every "
            "database under\n"
            "                               SOURCE: orphans, and with "
            "-o gc_keep=N / gc_keep_for=S\n"
            "                               old versions (what a mount does "
            "in the background)\n"
            "\n"
            "  SOURCE MOUNTPOINT [-f] [-d] [-o opt,...]\n"
            "                               mount every database under "
            "SOURCE (file:///dir,\n"
            "                               s3://BUCKET[/PREFIX]) as "
            "MOUNTPOINT/NAME.db (docs/mount.md)\n"
            "\n"
            "options (-o name=value, also from the environment): see "
            "dsqlfs(8)\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
        !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        printf("dsqlfs %s\n", DSQ_VERSION_STRING);
        return 0;
    }
    if (!strcmp(argv[1], "maintain"))
        return dsq_maint_main(argc - 1, argv + 1);
    if (dsq_admin_is_command(argv[1]))
        return dsq_admin_main(argc - 1, argv + 1);
    if (strstr(argv[1], "://"))
        return dsq_mount_main(argc, argv);
    fprintf(stderr, "dsqlfs: unknown command '%s' (see dsqlfs --help)\n",
            argv[1]);
    return 2;
}
