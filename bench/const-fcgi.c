/* The floor for benchmarks: a minimal libfcgi responder that sends one constant reply,
 * built by bench/http.sh.  Usage: const-fcgi FILE (the body to send), on stdin's socket. */
#include <stdio.h>
#include <stdlib.h>

#include <fcgiapp.h>

int
main(int argc, char **argv)
{
	static char body[1 << 16];
	char head[128];
	FCGX_Request req;
	FILE *f;
	size_t n;

	if (argc != 2 || (f = fopen(argv[1], "rb")) == NULL)
		return 2;
	n = fread(body, 1, sizeof(body), f);
	fclose(f);
	int hl = snprintf(head, sizeof(head), "Status: 200 OK\r\nContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\n\r\n", n);
	FCGX_Init();
	FCGX_InitRequest(&req, 0, 0);
	while (FCGX_Accept_r(&req) >= 0) {
		FCGX_PutStr(head, hl, req.out);
		FCGX_PutStr(body, (int)n, req.out);
		FCGX_Finish_r(&req);
	}
	return 0;
}
