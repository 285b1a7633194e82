// Command pgcheck exits 0 when the PostgreSQL named by
// PLUGBOARD_TEST_POSTGRES answers; CI waits on it before testing.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

func main() {
	url := os.Getenv("PLUGBOARD_TEST_POSTGRES")
	if url == "" {
		fmt.Fprintln(os.Stderr, "PLUGBOARD_TEST_POSTGRES is not set")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "PostgreSQL does not answer:", err)
		os.Exit(1)
	}
	defer conn.Close(ctx)
	if err := conn.Ping(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "PostgreSQL does not answer:", err)
		os.Exit(1)
	}
	fmt.Println("PostgreSQL is ready")
}
