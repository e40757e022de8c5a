/*
 * mount.h - "dsqlfs SOURCE MOUNTPOINT [-f] [-d] [-o opt,...]": the FUSE
 * daemon's entry (options, store probe, session loop).
 */
#ifndef DSQ_MOUNT_H
#define DSQ_MOUNT_H

/* argv[0] is the program, then SOURCE MOUNTPOINT and flags; returns the
   exit status. */
int dsq_mount_main(int argc, char **argv);

#endif
