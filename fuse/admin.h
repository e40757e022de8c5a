/*
 * admin.h - the admin subcommands of the dsqlfs binary (init, import,
 * export, versions, status, verify, recovery-scan).
 */
#ifndef DSQ_ADMIN_H
#define DSQ_ADMIN_H

/* 1 if name is an admin subcommand. */
int dsq_admin_is_command(const char *name);

/* Run argv[0] = subcommand; returns the process exit status. */
int dsq_admin_main(int argc, char **argv);

#endif
