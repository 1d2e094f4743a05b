// Package template is an empty stand-in for virt-template's processing
// engine, which only virtctl uses.
package template
