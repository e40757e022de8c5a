/*
 * main.c - the dsqlfs command: admin subcommands and (later) the mount.
 */
#include "err.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "dsqlfs: nothing here yet\n");
    return 2;
}
