/* tests/lmtasks-noscan: lmtasks itself, for the end-to-end suites under AddressSanitizer
 * (tests/lib/lib.sh runs it as $LMTASKS when LMTASKS_SANITIZED is set): the same program
 * with ASan's and UBSan's checks, without LeakSanitizer's scan at exit.  The scan stops
 * every thread through ptrace, about 45 ms of CPU a process on a virtual machine, and the
 * suites run the CLI thousands of times to set up what they test; the servers they test
 * keep the scan, as the unit suites do for every library function.  ASan reads these
 * defaults before its environment: ASAN_OPTIONS=detect_leaks=1 turns the scan back on. */
const char *__asan_default_options(void);

const char *
__asan_default_options(void)
{
	return "detect_leaks=0";
}
