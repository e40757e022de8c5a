/*
 * devio.h - the FUSE device's reads and writes (devio.c): libfuse's
 * custom io, which adds FUSE_HANDLE_KILLPRIV to the INIT reply when
 * libfuse leaves it out.
 *
 * Layer: FUSE front end.
 */
#ifndef DSQ_FUSE_DEVIO_H
#define DSQ_FUSE_DEVIO_H

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

/* After fuse_session_mount: the session reads and writes its device
   through devio.c (not with libfuse 3.17 or later: nothing to add).  0
   or -errno (the session then keeps libfuse's own io). */
int dsq_devio_attach(struct fuse_session *se);

/* From op_init, when the file system wants FUSE_CAP_HANDLE_KILLPRIV and
   the kernel offered it: the INIT reply carries the flag. */
void dsq_devio_want_killpriv(void);

/* 1 once an INIT reply went out with FUSE_HANDLE_KILLPRIV (the kernel
   then asks no attributes before a chown). */
int dsq_devio_killpriv_added(void);

#endif
