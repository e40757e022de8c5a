/*
 * devio.c - the FUSE device's reads and writes, given to libfuse as its
 * custom io: plain read(2) and writev(2), except for the INIT reply.
 *
 * Why: with FUSE_HANDLE_KILLPRIV the kernel leaves clearing setuid and
 * setgid bits to the file system; without it, it asks for the file's
 * attributes before every chown to do it itself.  SQLite running as
 * root fchowns each journal it creates, so that is one more round trip
 * per transaction.  libfuse 3.14 (Debian 12) keeps
 * FUSE_CAP_HANDLE_KILLPRIV in conn->want by default but never puts the
 * flag in its INIT reply; later versions do.  This daemon keeps no
 * setuid or setgid bit on any file (DSQ_MODE_KEPT in fs.h), so it meets
 * the flag's contract trivially.  When op_init wants the flag and the
 * kernel offered it, dsq_devio_want_killpriv arms the first reply, and
 * the flag is added to it if libfuse left it out.  With libfuse 3.17 or
 * later (which sends the flag) the session keeps libfuse's own io.
 *
 * Layer: FUSE front end.  Locking: one atomic flag; the INIT reply is
 * the first reply written, before the kernel sends any other request.
 */
#include "devio.h"

#include "log.h"

#include <linux/fuse.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

static atomic_int attached; /* our io is the session's */
static atomic_int killpriv_armed;
static atomic_int killpriv_added;

/* libfuse 3.17 and later put the flag in their INIT reply themselves. */
static int libfuse_sends_killpriv(void)
{
    return fuse_version() >= 317;
}

void dsq_devio_want_killpriv(void)
{
    if (atomic_load(&attached))
        atomic_store(&killpriv_armed, 1);
    else if (libfuse_sends_killpriv())
        atomic_store(&killpriv_added, 1);
}

int dsq_devio_killpriv_added(void)
{
    return atomic_load(&killpriv_added);
}

/* The INIT reply with FUSE_HANDLE_KILLPRIV set, written in one piece; or
   -2 when the message is not a successful INIT reply (then written as
   it is). */
static ssize_t write_init(int fd, const struct iovec *iov, int count)
{
    unsigned char msg[512];
    size_t len = 0;
    for (int i = 0; i < count; i++) {
        if (iov[i].iov_len > sizeof(msg) - len)
            return -2;
        memcpy(msg + len, iov[i].iov_base, iov[i].iov_len);
        len += iov[i].iov_len;
    }
    struct fuse_out_header oh;
    struct fuse_init_out io;
    const size_t flags_end =
        offsetof(struct fuse_init_out, flags) + sizeof(io.flags);
    if (len < sizeof(oh) + flags_end)
        return -2;
    memcpy(&oh, msg, sizeof(oh));
    if (oh.error != 0 || oh.len != len)
        return -2;
    memset(&io, 0, sizeof(io));
    memcpy(&io, msg + sizeof(oh), flags_end);
    if (io.major != FUSE_KERNEL_VERSION || io.minor < 26)
        return -2; /* the flag came with protocol 7.26 */
    if (!(io.flags & FUSE_HANDLE_KILLPRIV)) {
        io.flags |= FUSE_HANDLE_KILLPRIV;
        memcpy(msg + sizeof(oh) + offsetof(struct fuse_init_out, flags),
               &io.flags, sizeof(io.flags));
        dsq_log(DSQ_LOG_DEBUG, "mount",
                "INIT reply: FUSE_HANDLE_KILLPRIV added (libfuse left it out)");
    }
    atomic_store(&killpriv_added, 1);
    return write(fd, msg, len);
}

static ssize_t dev_writev(int fd, struct iovec *iov, int count, void *userdata)
{
    (void)userdata;
    /* every reply comes here: a plain load, the exchange only once */
    if (atomic_load_explicit(&killpriv_armed, memory_order_relaxed) &&
        atomic_exchange(&killpriv_armed, 0)) {
        ssize_t r = write_init(fd, iov, count);
        if (r != -2)
            return r;
    }
    return writev(fd, iov, count);
}

static ssize_t dev_read(int fd, void *buf, size_t len, void *userdata)
{
    (void)userdata;
    return read(fd, buf, len);
}

int dsq_devio_attach(struct fuse_session *se)
{
    static const struct fuse_custom_io io = {
        .writev = dev_writev,
        .read = dev_read,
    };
    /* nothing to add then, and a custom io would switch off what libfuse
       does with the device beyond read and writev (io_uring) */
    if (libfuse_sends_killpriv())
        return 0;
    /* the session's own device: libfuse closes it as before */
    int r = fuse_session_custom_io(se, &io, fuse_session_fd(se));
    if (r == 0)
        atomic_store(&attached, 1);
    return r;
}
