// Package containers runs the scenario suite on the container lab
// (lab/containers): CTL-01 with 100 pumps in the fleet container, and the
// segmentation scenarios (ATK-04, ATK-11, ATK-31) under the legacy flat
// network and under segmented zones. Without a usable Docker engine the
// tests skip with the reason, unless PUMPLAB_REQUIRE_DOCKER is set (as
// .ci/run does), where that is a failure. After the suite no container or
// network with the lab's label may remain.
package containers
