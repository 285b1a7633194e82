package component

// Validator is a component that checks an instance's property values,
// beyond their types, when a flow is saved and started: a cron
// expression, a duration, a time zone.
type Validator interface {
	Component
	// Validate checks props, which holds only the properties whose values
	// are constants (no placeholder), defaults filled in. It returns the
	// property at fault and why.
	Validate(props map[string]any) (property string, err error)
}
