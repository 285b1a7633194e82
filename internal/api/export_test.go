package api

// APIRoutes exposes the served API patterns to the OpenAPI test.
func (s *Server) APIRoutes() []string { return s.apiRoutes }

// OpenAPIDocument exposes the embedded OpenAPI document to tests.
func OpenAPIDocument() []byte { return openAPIDoc }
