/* The servers' error log: one line at a time to standard error, which the service manager
 * or the web server keeps.  Safe from any thread; not from a signal handler. */
#ifndef LMTASKS_LOG_H
#define LMTASKS_LOG_H

/* Writes "PROG: " and the formatted line to standard error in one write, so lines of
 * several threads never mix; a line is cut at 1 KiB.  Past 20 lines in a second the rest
 * are counted, and the first line of a later second says how many were left out. */
__attribute__((format(printf, 2, 3)))
void log_line(const char *prog, const char *fmt, ...);

#endif
