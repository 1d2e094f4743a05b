// Package chart tests the Wukong Helm chart (charts/wukong) with the Helm Go
// SDK: rendering and lint over a matrix of values, the values schema, drift
// against controller-gen output, install/upgrade/uninstall on a real API
// server under the restricted Pod Security level, and the manager running
// with exactly the chart's RBAC.
package chart
